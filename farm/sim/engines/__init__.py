"""The simulator's engines: what produces the tokens of an answer inside a scheduler slot.

The server (`farm.sim.app`, the routes) and its scheduler (`farm.sim.scheduler`, runners and
slots) are the same for every engine; an engine (`base.Engine`) loads a runner, runs one
generation per slot, embeds and tokenizes. `synthetic` is the timing model with no model at
all; `llamacpp` runs real weights (Gemma 3 270M base) on llama.cpp in a supervised Node worker.
`choice.engine_for(settings)` picks one from `--engine`.
"""
