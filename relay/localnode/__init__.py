"""A local NKN node for offline use and tests: the unmodified nkn-sdk connects to it.

It is a local test network, never the real NKN network. Run it with
`python -m relay.localnode --port P` (or `invoke nkn-local`); in tests use
`relay.localnode.child.LocalNode()`.
"""
