"""The console's few static files, served by name from a fixed list (no path walking)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

STATIC = Path(__file__).parent / "static"
HTMX = "vendor/htmx-2.0.11.min.js"
FILES: dict[str, tuple[Path, str]] = {
    "console.css": (STATIC / "console.css", "text/css"),
    "console.js": (STATIC / "console.js", "text/javascript"),
    "board-grid.js": (STATIC / "board-grid.js", "text/javascript"),
    "htmx.min.js": (STATIC / HTMX, "text/javascript"),
    "charts.css": (STATIC / "charts.css", "text/css"),
    "live.js": (STATIC / "live.js", "text/javascript"),
}
router = APIRouter(include_in_schema=False)


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for path, _ in FILES.values():
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


VERSION = _fingerprint()


def static_url(name: str) -> str:
    """The URL of a static file, with a version so browsers may cache it for long."""
    return f"/console/static/{name}?v={VERSION}"


@router.get("/console/static/{name}")
async def static_file(name: str) -> Response:
    """One file of the list, or 404."""
    found = FILES.get(name)
    if found is None:
        return Response("not found", status_code=404, media_type="text/plain")
    path, media_type = found
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": "public, max-age=86400"})
