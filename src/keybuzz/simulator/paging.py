"""Opaque, signed page tokens (standard base64, so ``+ / =`` must be URL-encoded like Amazon's)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from typing import Any

from starlette.datastructures import QueryParams

_SIGNATURE_BYTES = 12


class TokenCodec:
    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)

    def encode(self, payload: dict[str, Any]) -> str:
        data = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        return base64.b64encode(self._sign(data) + data).decode("ascii")

    def decode(self, token: str) -> dict[str, Any] | None:
        try:
            raw = base64.b64decode(token.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            return None
        signature, data = raw[:_SIGNATURE_BYTES], raw[_SIGNATURE_BYTES:]
        if not hmac.compare_digest(signature, self._sign(data)):
            return None
        try:
            payload = json.loads(data)
        except ValueError:
            return None
        return payload if isinstance(payload, dict) else None

    def _sign(self, data: bytes) -> bytes:
        return hmac.new(self._key, data, hashlib.sha256).digest()[:_SIGNATURE_BYTES]


def fingerprint(query: QueryParams, ignored: frozenset[str]) -> str:
    """A digest of every parameter but ``ignored``; CSV and repeated forms compare equal."""
    pairs = sorted(
        (name, value)
        for name, raw in query.multi_items()
        if name not in ignored
        for value in raw.split(",")
        if value
    )
    return hashlib.sha256(json.dumps(pairs).encode()).hexdigest()[:32]
