"""The browser agent desktop: static files served by the simulator at /sim/desktop/.

The page (``index.html``, ``desktop.js``, ``desktop.css`` in this folder) imports
the official ``cometd`` npm library as an ES module from
``/sim/desktop/vendor/cometd/cometd.js``. Those files are the npm package's own,
copied into ``vendor/cometd/`` here by ``make vendor`` from the version
package-lock.json pins, committed, and shipped in the wheel as package data: the
installed tool needs neither the checkout nor npm, and the page never fetches
anything from a CDN. tests/test_wheel.py checks the copy is byte-identical to
node_modules/cometd.

``add_routes(router)`` registers everything on an aiohttp router; the simulator
calls it from ``make_app`` and tests may call it on a bare application to serve
the page on its own. See docs/desktop.md.
"""

from __future__ import annotations

import os
from pathlib import Path

from aiohttp import web

PREFIX = "/sim/desktop"
ASSETS_DIR = Path(__file__).resolve().parent
VENDOR_DIR = ASSETS_DIR / "vendor" / "cometd"

# The page's own files and their content types; nothing else in this folder is served.
PAGE_FILES = {
    "index.html": "text/html",
    "desktop.js": "text/javascript",
    "desktop.css": "text/css",
}
_VENDOR_TYPES = {".js": "text/javascript", ".json": "application/json", ".ts": "text/plain"}

COMETD_DIR_ENV = "GWSREPLAY_COMETD_DIR"
MISSING_COMETD = (
    "The official cometd npm library was not found (looked in: {places}).\n"
    "The package ships it in gwsreplay/sim/server/desktop/vendor/cometd/; in a checkout, "
    "restore it with `make vendor` (which runs `make node`, i.e. npm ci), "
    "or point {env} at a node_modules/cometd folder.\n"
)


def cometd_candidates() -> list[Path]:
    """Where the library may be, in order: $GWSREPLAY_COMETD_DIR (to try another version), the vendored copy."""
    places = []
    if os.environ.get(COMETD_DIR_ENV):
        places.append(Path(os.environ[COMETD_DIR_ENV]))
    places.append(VENDOR_DIR)
    return places


def cometd_dir() -> Path | None:
    """The first candidate that holds cometd.js, or None."""
    for place in cometd_candidates():
        if (place / "cometd.js").is_file():
            return place
    return None


def _not_found(text: str) -> web.Response:
    # Returned, not raised: the simulator turns raised HTTP errors into GWS JSON bodies,
    # and a person opening the page needs this plain explanation instead.
    return web.Response(status=404, text=text, content_type="text/plain")


def _no_cache(response: web.StreamResponse) -> web.StreamResponse:
    # A person editing the page (or a new npm ci) must see the new files on reload.
    response.headers["Cache-Control"] = "no-cache"
    return response


async def _redirect(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound(PREFIX + "/")


async def _page_file(request: web.Request) -> web.StreamResponse:
    name = request.match_info.get("name") or "index.html"
    content_type = PAGE_FILES.get(name)
    if content_type is None:
        return _not_found(f"no such desktop file: {name}\n")
    return _no_cache(web.FileResponse(ASSETS_DIR / name, headers={"Content-Type": content_type}))


async def _vendor_cometd(request: web.Request) -> web.StreamResponse:
    base = cometd_dir()
    if base is None:
        places = ", ".join(str(p) for p in cometd_candidates())
        return _not_found(MISSING_COMETD.format(places=places, env=COMETD_DIR_ENV))
    name = request.match_info["path"]
    # Flat folder of modules: no sub-directories, no dot-files, known extensions only.
    content_type = _VENDOR_TYPES.get(Path(name).suffix)
    if "/" in name or "\\" in name or name.startswith(".") or content_type is None:
        return _not_found(f"no such cometd file: {name}\n")
    path = base / name
    if not path.is_file():
        return _not_found(f"no such cometd file: {name} (in {base})\n")
    return _no_cache(web.FileResponse(path, headers={"Content-Type": content_type}))


def add_routes(router: web.UrlDispatcher) -> None:
    """GET /sim/desktop[/], /sim/desktop/{index.html,desktop.js,desktop.css}, /sim/desktop/vendor/cometd/*."""
    router.add_get(PREFIX, _redirect)
    router.add_get(PREFIX + "/", _page_file)
    router.add_get(PREFIX + "/vendor/cometd/{path}", _vendor_cometd)
    router.add_get(PREFIX + "/{name}", _page_file)


def make_static_app() -> web.Application:
    """Only the desktop's files (tests use it to serve the page next to a mock GWS)."""
    app = web.Application()
    add_routes(app.router)
    return app
