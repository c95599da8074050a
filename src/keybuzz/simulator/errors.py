"""Amazon's error responses: SP-API ``{"errors": [...]}`` bodies and LWA OAuth errors."""

from __future__ import annotations

from typing import Any

ACCESS_DENIED = "Access to requested resource is denied."
TOKEN_MISSING = "Access token is missing in the request header."
TOKEN_INVALID = "The access token you provided is revoked, malformed or invalid."
TOKEN_EXPIRED = "The access token you provided has expired."


class SpApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: str | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details

    def body(self) -> dict[str, Any]:
        error: dict[str, str] = {"code": self.code, "message": self.message}
        if self.details is not None:
            error["details"] = self.details
        return {"errors": [error]}


def invalid_input(message: str, details: str | None = None) -> SpApiError:
    return SpApiError(400, "InvalidInput", message, details)


def not_found(message: str) -> SpApiError:
    return SpApiError(404, "NotFound", message)


def unauthorized(details: str = "") -> SpApiError:
    return SpApiError(403, "Unauthorized", ACCESS_DENIED, details)


def quota_exceeded() -> SpApiError:
    return SpApiError(
        429, "QuotaExceeded", "You exceeded your quota for the requested resource.", ""
    )


def internal_failure(status: int) -> SpApiError:
    return SpApiError(
        status, "InternalFailure", "We encountered an internal error. Please try again."
    )


class LwaError(Exception):
    """An OAuth 2 error from the Login with Amazon token endpoint."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.status = status
        self.error = error
        self.description = description

    def body(self) -> dict[str, str]:
        return {"error_description": self.description, "error": self.error}


def invalid_grant(parameter: str, revoked: bool = False) -> LwaError:
    description = f"The request has an invalid grant parameter : {parameter}"
    if revoked:
        description += ". User may have revoked or didn't grant the permission."
    return LwaError(400, "invalid_grant", description)


def invalid_client() -> LwaError:
    return LwaError(401, "invalid_client", "Client authentication failed")


def invalid_request(description: str) -> LwaError:
    return LwaError(400, "invalid_request", description)


def unsupported_grant_type(grant_type: str) -> LwaError:
    return LwaError(400, "unsupported_grant_type", f"Unsupported grant type: {grant_type}")
