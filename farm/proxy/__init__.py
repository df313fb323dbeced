"""The stream-preserving proxy in front of one or more Ollama backends.

`farm.proxy.app.create_app(config)` builds the ASGI application; `python -m farm.proxy` runs it
on uvicorn. The streaming hot path is a raw ASGI handler with an aiohttp client (see
`farm.proxy.forward`); FastAPI serves only the control endpoints `/_health` and `/metrics`.
"""
