"""`/docs`: Swagger UI from the pinned `swagger-ui-bundle` package, never from a CDN.

The page loads only this gateway's own files (no third-party script), so the API docs stay
under the same content security policy as the console. `PATCHBAY_API_DOCS=false` turns the
page off (the OpenAPI document at /openapi.json stays).
"""

from __future__ import annotations

from pathlib import Path

import swagger_ui_bundle
from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, Response

SWAGGER = Path(swagger_ui_bundle.swagger_ui_path)
INIT = Path(__file__).parent / "web" / "static" / "docs" / "init.js"
FILES: dict[str, tuple[Path, str]] = {
    "swagger-ui.css": (SWAGGER / "swagger-ui.css", "text/css"),
    "swagger-ui-bundle.js": (SWAGGER / "swagger-ui-bundle.js", "text/javascript"),
    "swagger-ui-standalone-preset.js": (SWAGGER / "swagger-ui-standalone-preset.js", "text/javascript"),
    "init.js": (INIT, "text/javascript"),
}
PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Patchbay API</title>
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="/docs/static/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/static/swagger-ui-bundle.js"></script>
  <script src="/docs/static/swagger-ui-standalone-preset.js"></script>
  <script src="/docs/static/init.js"></script>
</body>
</html>
"""
router = APIRouter(include_in_schema=False)


@router.get("/docs")
async def docs_page() -> HTMLResponse:
    """The Swagger UI page for /openapi.json."""
    return HTMLResponse(PAGE)


@router.get("/docs/static/{name}")
async def docs_file(name: str) -> Response:
    """One file of Swagger UI (from the fixed list), or 404."""
    found = FILES.get(name)
    if found is None:
        return Response("not found", status_code=404, media_type="text/plain")
    path, media_type = found
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": "public, max-age=86400"})
