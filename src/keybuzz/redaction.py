"""Keeps credentials out of log lines, whatever logs them (our code, httpx, uvicorn's access log).

Installed as the log record factory, so it covers every logger and handler: LWA tokens
(``Atza|``, ``Atzr|``, ``Atz.sprdt|``) and credential-bearing query parameters (the OAuth
callback's code and state, pre-signed report URLs) are replaced before anything is written.
"""

from __future__ import annotations

import contextlib
import logging
import re
from typing import Any

REDACTED = "[redacted]"
_TOKENS = re.compile(r"(Atz[ar]\||Atz\.sprdt\|)[^\s\"'&,;)\]}]+")
_PARAMETERS = re.compile(
    r"((?:spapi_oauth_code|code|state|refresh_token|access_token|client_secret|"
    r"X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|Signature)=)[^&\s\"']+",
    re.IGNORECASE,
)
_installed = False


def redact(text: str) -> str:
    return _PARAMETERS.sub(rf"\1{REDACTED}", _TOKENS.sub(rf"\1{REDACTED}", text))


def install() -> None:
    """Redact every log record from now on (idempotent)."""
    global _installed
    if _installed:
        return
    make_record = logging.getLogRecordFactory()

    def redacting_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a malformed call: leave it for logging to report
            return record
        if redact(message) != message:
            _redact_record(record, message)
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return record

    logging.setLogRecordFactory(redacting_record)
    _installed = True


def _redact_record(record: logging.LogRecord, message: str) -> None:
    """Redact the arguments one by one, keeping their shape (uvicorn's access formatter reads
    them as a tuple); a secret that only the whole message shows flattens it."""
    if isinstance(record.args, tuple) and isinstance(record.msg, str):
        record.msg, record.args = redact(record.msg), tuple(_redact_arg(a) for a in record.args)
        with contextlib.suppress(Exception):
            formatted = record.getMessage()
            if redact(formatted) == formatted:
                return
    record.msg, record.args = redact(message), None


def _redact_arg(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, int | float):
        return value
    text = str(value)
    redacted = redact(text)
    return value if redacted == text else redacted
