"""The stream-preserving proxy in front of one or more Ollama backends.

`farm.proxy.app.create_app(config)` builds the ASGI application; `python -m farm.proxy` runs it
on uvicorn. The streaming hot path is a raw ASGI handler (`farm.proxy.forward`) with a lean
httptools-based client (`farm.proxy.upstream`); FastAPI serves only the control endpoints
`/_health` and `/metrics`, and aiohttp only probes backend health.
"""
