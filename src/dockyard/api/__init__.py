"""The Docker Engine API over aiohttp: server.py (app, middleware, listeners), hijack.py (attach
streams), common.py (helpers), routes/ (one module per route group)."""
