"""Server-rendered pages a seller's browser lands on (OAuth outcome, the Orders entry page)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from keybuzz.errors import KeyBuzzError

router = APIRouter(include_in_schema=False)
_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
)
SECURITY_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
    ),
}


def render(template: str, status_code: int = 200, **context: object) -> HTMLResponse:
    html = _templates.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)


def oauth_failed(error: KeyBuzzError) -> HTMLResponse:
    return render(
        "oauth_failed.html",
        status_code=error.status,
        title=error.title,
        detail=error.detail or error.title,
        code=error.code,
    )


@router.get("/orders", response_class=HTMLResponse)
async def orders_page(amazon: Annotated[str | None, Query(max_length=20)] = None) -> HTMLResponse:
    return render("orders.html", title="Orders", amazon=amazon)
