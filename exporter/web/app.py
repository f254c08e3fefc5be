"""The explorer as an ASGI app (Starlette), built by `create_app`: read-only pages from the
database, each with a JSON twin (`/lineage.json`, ...) that the page's own script and other
tools call. URLs carry all of a view's state, so a link reproduces what someone saw.

Security: every response forbids inline scripts and styles and any other origin
(Content-Security-Policy); names from the API reach pages only through autoescaped templates or
the DOM's textContent; with a token, every request must carry it (`Authorization: Bearer`, or
once as `?token=` from a browser, which then keeps it in an HttpOnly cookie).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from exporter.errors import QueryError
from exporter.questions import DIRECTIONS, parse_instant
from exporter.web import data

HERE = Path(__file__).parent
TOKEN_COOKIE = "lineage_explorer_token"  # noqa: S105 - a cookie name
MAX_DEPTH = 20
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}

Handler = Callable[[Request], Awaitable[Response]]


def create_app(engine: Engine, token: str | None = None) -> Starlette:
    """The explorer over `engine`; with `token`, every request must present it."""
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    pages = _Pages(engine, templates)
    routes = [
        Route("/", pages.search),
        Route("/search.json", pages.search_json),
        Route("/lineage", pages.lineage),
        Route("/lineage.json", pages.lineage_json),
        Route("/columns.json", pages.columns_json),
        Route("/table", pages.table),
        Route("/table.json", pages.table_json),
        Route("/runs", pages.runs),
        Route("/runs.json", pages.runs_json),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    middleware = [Middleware(_Guard, token=token)]
    return Starlette(routes=routes, middleware=middleware, exception_handlers=_ERRORS)


class _Guard(BaseHTTPMiddleware):
    """The security headers on every response, and the token when one is configured."""

    def __init__(self, app: Any, token: str | None) -> None:
        super().__init__(app)
        self._token = token

    async def dispatch(self, request: Request, call_next: Handler) -> Response:
        response = await self._checked(request, call_next)
        response.headers.update(SECURITY_HEADERS)
        return response

    async def _checked(self, request: Request, call_next: Handler) -> Response:
        if self._token is None:
            return await call_next(request)
        given = request.query_params.get("token")
        if given is not None and _same(given, self._token):
            # Keep it out of the address bar (and of any link shared from it).
            clean = request.url.remove_query_params("token")
            response: Response = RedirectResponse(str(clean), status_code=303)
            response.set_cookie(
                TOKEN_COOKIE, self._token, httponly=True, samesite="strict", path="/"
            )
            return response
        header = request.headers.get("authorization", "")
        bearer = header[7:] if header.lower().startswith("bearer ") else ""
        cookie = request.cookies.get(TOKEN_COOKIE, "")
        if _same(bearer, self._token) or _same(cookie, self._token):
            return await call_next(request)
        return PlainTextResponse(
            "a token is required: Authorization: Bearer <token>, or open ?token=<token> once",
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )


def _same(given: str, expected: str) -> bool:
    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())


async def _bad_request(request: Request, exc: Exception) -> Response:
    message = str(exc)
    if request.url.path.endswith(".json"):
        return JSONResponse({"error": message}, status_code=400)
    return PlainTextResponse(f"error: {message}", status_code=400)


_ERRORS: dict[Any, Any] = {QueryError: _bad_request}


class _Pages:
    """One method per page and per JSON twin; each reads in its own connection."""

    def __init__(self, engine: Engine, templates: Jinja2Templates) -> None:
        self.engine = engine
        self.templates = templates

    def _render(self, request: Request, template: str, **context: Any) -> Response:
        return self.templates.TemplateResponse(request, template, context)

    # -- search --------------------------------------------------------------------------------

    def _search(self, request: Request) -> dict[str, Any]:
        with self.engine.connect() as conn:
            return data.search(conn, request.query_params.get("q", "").strip())

    async def search(self, request: Request) -> Response:
        return self._render(request, "search.html", found=self._search(request))

    async def search_json(self, request: Request) -> Response:
        return JSONResponse(self._search(request))

    # -- the graph -----------------------------------------------------------------------------

    def _graph(self, request: Request) -> dict[str, Any]:
        query = graph_query(request, datetime.now(UTC))
        with self.engine.connect() as conn:
            found = data.graph(conn, query, datetime.now(UTC))
            found["instants"] = data.run_instants(conn)
        return found

    async def lineage(self, request: Request) -> Response:
        query = graph_query(request, datetime.now(UTC))  # a bad URL is a 400 here, not in JS
        return self._render(request, "lineage.html", query=query, directions=list(DIRECTIONS))

    async def lineage_json(self, request: Request) -> Response:
        return JSONResponse(self._graph(request))

    async def columns_json(self, request: Request) -> Response:
        now = datetime.now(UTC)
        table = _required(request, "table")
        at = _instant(request, "as_of", now) or now
        with self.engine.connect() as conn:
            edges = data.column_edges_of_table(conn, table, at)
        return JSONResponse({"table": table, "as_of": data.iso(at), "edges": edges})

    # -- a table, the runs ---------------------------------------------------------------------

    def _table(self, request: Request) -> dict[str, Any]:
        now = datetime.now(UTC)
        name = _required(request, "name")
        with self.engine.connect() as conn:
            return data.table_page(conn, name, _instant(request, "as_of", now) or now)

    async def table(self, request: Request) -> Response:
        return self._render(request, "table.html", table=self._table(request))

    async def table_json(self, request: Request) -> Response:
        return JSONResponse(self._table(request))

    def _runs(self) -> dict[str, Any]:
        with self.engine.connect() as conn:
            return data.runs_page(conn)

    async def runs(self, request: Request) -> Response:
        return self._render(request, "runs.html", runs=self._runs()["runs"])

    async def runs_json(self, request: Request) -> Response:
        return JSONResponse(self._runs())


def graph_query(request: Request, now: datetime) -> data.GraphQuery:
    """The graph view's state from its URL; a QueryError (400) names what is wrong."""
    params = request.query_params
    direction = params.get("direction", "both")
    if direction not in DIRECTIONS:
        raise QueryError(f"direction must be one of {', '.join(DIRECTIONS)}")
    try:
        depth = int(params.get("depth", "3"))
    except ValueError:
        raise QueryError("depth must be a whole number") from None
    if not 1 <= depth <= MAX_DEPTH:
        raise QueryError(f"depth must be between 1 and {MAX_DEPTH}")
    return data.GraphQuery(
        _required(request, "name"),
        direction,
        depth,
        _instant(request, "as_of", now),
        _instant(request, "compare", now),
    )


def _required(request: Request, name: str) -> str:
    value = request.query_params.get(name, "").strip()
    if not value:
        raise QueryError(f"`{name}` is required")
    return value


def _instant(request: Request, name: str, now: datetime) -> datetime | None:
    value = request.query_params.get(name, "").strip()
    return parse_instant(value, now) if value else None
