"""The Ollama simulator: a synthetic, model-free backend that speaks Ollama's HTTP API.

It imports nothing else from `farm` (it is the independent witness the other parts are
tested against). Entry points: `python -m farm.sim`, `farm.sim.app.create_app(config)` and
`farm.sim.child.SimServer`.
"""
