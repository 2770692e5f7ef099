"""The operator back office: one static page (control_plane/http/backoffice/) over the JSON API.
Everything is served from the package; the page loads nothing from elsewhere (CSP says so)."""
from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response

from control_plane.http.errors import ApiError

router = APIRouter(include_in_schema=False)

ASSETS = Path(__file__).resolve().parent.parent / "backoffice"
FILES = {"": ("index.html", "text/html; charset=utf-8"),
         "backoffice.js": ("backoffice.js", "text/javascript; charset=utf-8"),
         "backoffice.css": ("backoffice.css", "text/css; charset=utf-8")}
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                               "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@router.get("/backoffice")
def backoffice_root() -> RedirectResponse:
    return RedirectResponse("/backoffice/", status_code=308)


@router.get("/backoffice/")
def backoffice_page() -> Response:
    return backoffice_asset("")


@router.get("/backoffice/{name}")
def backoffice_asset(name: str) -> Response:
    if name not in FILES:
        raise ApiError(404, "not_found", "no such back-office file")
    file, media_type = FILES[name]
    return Response((ASSETS / file).read_bytes(), media_type=media_type, headers=HEADERS)
