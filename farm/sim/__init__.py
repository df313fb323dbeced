"""The Ollama simulator: a synthetic, model-free backend that speaks Ollama's HTTP API.

It imports nothing else from `farm` but the settings layer (`farm.settings`) and the small
shared helpers (`farm.common`): it is the independent witness the other parts are tested
against. Entry points: `python -m farm.sim`, `farm.sim.app.create_app(settings)` with a
`farm.sim.settings.SimSettings`, and `farm.sim.child.SimServer`.
"""
