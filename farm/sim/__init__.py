"""The Ollama simulator: a backend that speaks Ollama's HTTP API, synthetic or real.

Its engine (`farm.sim.engines`) is synthetic by default (a timing model, no model at all) or
llama.cpp with real weights (`--engine llamacpp`: Gemma 3 270M base, on the CPU); the HTTP
layer and the scheduler (`farm.sim.scheduler`: slots, queue, 503, loads, keep-alive) are the
same for both.

It imports nothing else from `farm` but the settings layer (`farm.settings`) and the small
shared helpers (`farm.common`): it is the independent witness the other parts are tested
against. Entry points: `python -m farm.sim`, `farm.sim.app.create_app(settings)` with a
`farm.sim.settings.SimSettings`, and `farm.sim.child.SimServer`.
"""
