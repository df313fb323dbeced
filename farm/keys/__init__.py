"""Named API keys, their limits and their usage, in one embedded SQLite database.

`farm.keys.store` owns the file; the proxy looks keys up and records usage through it, and
`python -m farm.keys` (`invoke keys`, `invoke usage`) manages it.
"""
