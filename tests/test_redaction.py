from __future__ import annotations

import logging

import pytest

from keybuzz import redaction
from tests.fixtures.hygiene import leaks_in

CALLBACK = (
    "GET /api/v1/marketplaces/amazon/oauth/callback?state=s3cr3tstate&selling_partner_id=A1"
    "&spapi_oauth_code=ANabcdefgh HTTP/1.1"
)


def test_tokens_and_credential_parameters_are_redacted() -> None:
    line = redaction.redact(
        f"{CALLBACK} Atzr|IwEBIrefresh Atza|accessxyz Atz.sprdt|rdt123 "
        "https://docs/x?X-Amz-Signature=abc&X-Amz-Expires=300"
    )

    assert "s3cr3tstate" not in line
    assert "ANabcdefgh" not in line
    assert "IwEBIrefresh" not in line
    assert "accessxyz" not in line
    assert "rdt123" not in line
    assert "X-Amz-Signature=[redacted]&X-Amz-Expires=300" in line
    assert "selling_partner_id=A1" in line


def test_every_logger_is_redacted_once_installed(caplog: pytest.LogCaptureFixture) -> None:
    redaction.install()
    with caplog.at_level(logging.INFO):
        logging.getLogger("uvicorn.access").info("%s", CALLBACK)
        try:
            raise ValueError("refresh_token=Atzr|IwEBIleaked")
        except ValueError:
            logging.getLogger("somewhere").exception("failed")

    assert "s3cr3tstate" not in caplog.text
    assert "IwEBIleaked" not in caplog.text
    assert not leaks_in(caplog.text)


def test_the_session_scan_recognises_a_leak() -> None:
    assert leaks_in("token=Atzr|IwEBIabcdefgh")
    assert not leaks_in("token=Atzr|[redacted]")


def test_uvicorns_access_log_keeps_its_format_and_loses_the_secrets() -> None:
    from uvicorn.logging import AccessFormatter

    redaction.install()
    path = CALLBACK.split(" ")[1]
    record = logging.getLogger("uvicorn.access").makeRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", path, "1.1", 303),
        None,
    )

    line = AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s').format(record)

    assert line.startswith('127.0.0.1:5000 - "GET /api/v1/marketplaces/amazon/oauth/callback?')
    assert line.endswith('HTTP/1.1" 303 See Other')
    assert "s3cr3tstate" not in line
    assert "ANabcdefgh" not in line
