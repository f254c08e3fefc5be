"""The lineage explorer: read-only pages over the database, with a time slider.

`app.create_app(engine, token)` builds the ASGI app (Starlette, Jinja2 templates, the graph drawn
in the browser by the vendored dagre); `server.Explorer` serves it with uvicorn, in the
foreground for `lineage-exporter ui` or beside the daemon's health port; `data` holds the
questions each page asks.
"""
