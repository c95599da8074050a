"""Login with Amazon token endpoint: ``authorization_code`` and ``refresh_token`` grants."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse

from keybuzz.simulator.credentials import ACCESS_TOKEN_LIFETIME, RefreshToken
from keybuzz.simulator.errors import (
    invalid_client,
    invalid_request,
    unsupported_grant_type,
)
from keybuzz.simulator.gateway import simulator_of
from keybuzz.simulator.settings import SimulatorSettings
from keybuzz.simulator.state import Simulator

router = APIRouter()
OPERATION = "lwa.token"


async def _form(request: Request) -> dict[str, str]:
    """LWA reads form-encoded bodies; JSON bodies (as some SDKs send) are accepted too."""
    raw = await request.body()
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            data = json.loads(raw or b"{}")
        except ValueError:
            raise invalid_request("The request body is not valid JSON.") from None
        if not isinstance(data, dict):
            raise invalid_request("The request body must be an object.")
        return {str(key): str(value) for key, value in data.items()}
    return dict(parse_qsl(raw.decode("utf-8", errors="replace")))


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:]).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, _, secret = decoded.partition(":")
    return client_id, secret


def _check_client(settings: SimulatorSettings, form: dict[str, str], request: Request) -> None:
    client_id, secret = _basic_credentials(request) or (
        form.get("client_id", ""),
        form.get("client_secret", ""),
    )
    expected = settings.client_secret.get_secret_value()
    if client_id != settings.client_id or not hmac.compare_digest(secret, expected):
        raise invalid_client()


def _grant(simulator: Simulator, form: dict[str, str]) -> RefreshToken:
    grant_type = form.get("grant_type")
    now = simulator.clock.time()
    if grant_type == "refresh_token":
        refresh = form.get("refresh_token")
        if not refresh:
            raise invalid_request("The request is missing a required parameter : refresh_token")
        return simulator.credentials.valid_refresh_token(refresh)
    if grant_type == "authorization_code":
        code = form.get("code")
        if not code:
            raise invalid_request("The request is missing a required parameter : code")
        return simulator.credentials.redeem_code(code, form.get("redirect_uri"), now)
    if not grant_type:
        raise invalid_request("The request is missing a required parameter : grant_type")
    raise unsupported_grant_type(grant_type)


@router.post("/auth/o2/token", include_in_schema=False)
async def token(request: Request) -> JSONResponse:
    simulator = simulator_of(request)
    request.state.operation = OPERATION
    form = await _form(request)
    with simulator.lock:
        _check_client(simulator.settings, form, request)
        refresh = _grant(simulator, form)
        access = simulator.credentials.issue_access_token(refresh, simulator.clock.time())
    return JSONResponse(
        {
            "access_token": access.value,
            "refresh_token": refresh.value,
            "token_type": "bearer",
            "expires_in": ACCESS_TOKEN_LIFETIME,
        }
    )
