"""The Swagger UI page at `/docs`, with its assets served by us, not a CDN.

FastAPI's page loads Swagger UI from jsDelivr, so `/docs` is blank without the internet (a
train, a locked-down network). The assets come from the pinned `swagger-ui-bundle-v2` package
instead, at a path carrying their version, so they may be cached for good. Every service
serves them under its prefix (`/v1/auth/docs/assets/<version>/...`); the gateway's `/docs`
uses auth's copy, which `natomedia dev` and nginx already route.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from swagger_ui_bundle import swagger_ui_path

from services.common.problems import NotFound

SWAGGER_UI_DIR: Final = Path(str(swagger_ui_path))
SWAGGER_UI_VERSION: Final = SWAGGER_UI_DIR.name.removeprefix("swagger-ui-")
# What the page loads; nothing else of the package is served.
_ASSETS: Final = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}
# Versioned URLs never change content.
_IMMUTABLE: Final = {"Cache-Control": "public, max-age=31536000, immutable"}
# The auth service's copy, which the gateway's page uses.
GATEWAY_ASSETS_URL: Final = f"/v1/auth/docs/assets/{SWAGGER_UI_VERSION}"


def assets_url(prefix: str) -> str:
    return f"{prefix}/docs/assets/{SWAGGER_UI_VERSION}"


def swagger_ui_html(openapi_url: str, title: str, assets: str) -> str:
    """The docs page for `openapi_url`, loading Swagger UI from `assets` (a path of ours)."""
    page = get_swagger_ui_html(
        openapi_url=openapi_url,
        title=title,
        swagger_js_url=f"{assets}/swagger-ui-bundle.js",
        swagger_css_url=f"{assets}/swagger-ui.css",
        swagger_favicon_url=f"{assets}/favicon-32x32.png",
        swagger_ui_parameters={
            "persistAuthorization": True,
            "displayOperationId": True,
            # Swagger UI would otherwise send the document to validator.swagger.io for a badge.
            "validatorUrl": None,
        },
    )
    return bytes(page.body).decode()


def docs_router(prefix: str, title: str) -> APIRouter:
    """`GET {prefix}/docs` and the assets it loads; kept out of the API document."""
    router = APIRouter(include_in_schema=False)
    assets = assets_url(prefix)
    page = swagger_ui_html(f"{prefix}/openapi.json", f"{title} - docs", assets)

    @router.get(f"{prefix}/docs")
    async def docs() -> HTMLResponse:
        return HTMLResponse(page)

    @router.get(assets + "/{name}")
    async def asset(name: str) -> FileResponse:
        media_type = _ASSETS.get(name)
        if media_type is None:
            raise NotFound("No such file.")
        return FileResponse(SWAGGER_UI_DIR / name, media_type=media_type, headers=_IMMUTABLE)

    return router
