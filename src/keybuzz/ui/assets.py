"""The pages' static files (script, style sheet, icon), served by the app itself. Each is read
once and addressed with a hash of its content, so a browser keeps it until it changes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

ASSET_DIR = Path(__file__).parent / "static"
STATIC_PREFIX = "/static/"
MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


@dataclass(frozen=True)
class Asset:
    content: bytes
    media_type: str
    version: str


def _load(directory: Path) -> dict[str, Asset]:
    return {
        path.name: Asset(
            content=path.read_bytes(),
            media_type=MEDIA_TYPES[path.suffix],
            version=hashlib.sha256(path.read_bytes()).hexdigest()[:12],
        )
        for path in sorted(directory.iterdir())
        if path.suffix in MEDIA_TYPES
    }


ASSETS = _load(ASSET_DIR)


def asset_url(name: str) -> str:
    return f"{STATIC_PREFIX}{name}?v={ASSETS[name].version}"
