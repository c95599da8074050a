"""How the server-rendered pages are written: templates, words in the reader's language, and the
headers every page carries (its script and style sheet come from this site only)."""

from __future__ import annotations

from pathlib import Path

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from keybuzz.errors import KeyBuzzError
from keybuzz.ui.assets import asset_url
from keybuzz.ui.i18n import (
    DEFAULT_LANGUAGE,
    LANGUAGE_NAMES,
    Language,
    Translator,
    other_language,
)

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
)
_templates.globals["asset_url"] = asset_url

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
}


def render(
    template: str,
    status_code: int = 200,
    *,
    language: Language = DEFAULT_LANGUAGE,
    headers: dict[str, str] | None = None,
    **context: object,
) -> HTMLResponse:
    html = _templates.get_template(template).render(
        t=Translator(language),
        language=language,
        other_language=other_language(language),
        language_names=LANGUAGE_NAMES,
        **context,
    )
    return HTMLResponse(
        html, status_code=status_code, headers={**SECURITY_HEADERS, **(headers or {})}
    )


def oauth_failed(error: KeyBuzzError, language: Language = DEFAULT_LANGUAGE) -> HTMLResponse:
    return render(
        "oauth_failed.html",
        status_code=error.status,
        language=language,
        title=error.title,
        detail=error.detail or error.title,
        code=error.code,
    )
