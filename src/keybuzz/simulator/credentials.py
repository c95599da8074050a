"""LWA authorization codes, refresh and access tokens, and restricted data tokens (RDT).

Every token is random and bound to one seller. Revoking a seller's refresh tokens (the seller
removing the app) also kills the access tokens and RDTs minted from them.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field

from keybuzz.simulator.errors import (
    TOKEN_EXPIRED,
    TOKEN_INVALID,
    TOKEN_MISSING,
    invalid_grant,
    unauthorized,
)

CODE_LIFETIME = 300
ACCESS_TOKEN_LIFETIME = 3600
RDT_LIFETIME = 3600


@dataclass(frozen=True, slots=True)
class RestrictedResource:
    method: str
    path: str
    data_elements: frozenset[str]

    def covers(self, method: str, path: str) -> bool:
        if method != self.method:
            return False
        pattern = "^" + re.sub(r"\\\{[^/]*\\\}", "[^/]+", re.escape(self.path)) + "$"
        return re.match(pattern, path) is not None


@dataclass(slots=True)
class RefreshToken:
    value: str
    seller_id: str
    revoked: bool = False


@dataclass(slots=True)
class AccessToken:
    value: str
    refresh: RefreshToken
    expires: float
    resources: tuple[RestrictedResource, ...] | None = None

    @property
    def is_restricted(self) -> bool:
        return self.resources is not None


@dataclass(slots=True)
class AuthorizationCode:
    value: str
    refresh: RefreshToken
    redirect_uri: str
    expires: float
    used: bool = False


@dataclass(slots=True)
class CredentialStore:
    codes: dict[str, AuthorizationCode] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshToken] = field(default_factory=dict)
    access_tokens: dict[str, AccessToken] = field(default_factory=dict)

    def authorize(self, seller_id: str) -> RefreshToken:
        """The seller grants the app access: a new refresh token (old ones stay valid)."""
        token = RefreshToken("Atzr|" + secrets.token_urlsafe(96), seller_id)
        self.refresh_tokens[token.value] = token
        return token

    def restore(self, value: str, seller_id: str) -> RefreshToken:
        """A refresh token granted before this simulator started: Amazon still honours it."""
        return self.refresh_tokens.setdefault(value, RefreshToken(value, seller_id))

    def issue_code(self, seller_id: str, redirect_uri: str, now: float) -> str:
        value = "AN" + secrets.token_urlsafe(15).replace("-", "x").replace("_", "y")
        refresh = RefreshToken("Atzr|" + secrets.token_urlsafe(96), seller_id)
        self.codes[value] = AuthorizationCode(value, refresh, redirect_uri, now + CODE_LIFETIME)
        return value

    def redeem_code(self, value: str, redirect_uri: str | None, now: float) -> RefreshToken:
        code = self.codes.get(value)
        if code is None or code.used or now >= code.expires:
            raise invalid_grant("code")
        if redirect_uri is not None and redirect_uri != code.redirect_uri:
            raise invalid_grant("code")
        code.used = True
        self.refresh_tokens[code.refresh.value] = code.refresh
        return code.refresh

    def valid_refresh_token(self, value: str) -> RefreshToken:
        refresh = self.refresh_tokens.get(value)
        if refresh is None:
            raise invalid_grant("refresh_token")
        if refresh.revoked:
            raise invalid_grant("refresh_token", revoked=True)
        return refresh

    def issue_access_token(self, refresh: RefreshToken, now: float) -> AccessToken:
        token = AccessToken(
            "Atza|" + secrets.token_urlsafe(96), refresh, now + ACCESS_TOKEN_LIFETIME
        )
        self.access_tokens[token.value] = token
        return token

    def issue_rdt(
        self, parent: AccessToken, resources: tuple[RestrictedResource, ...], now: float
    ) -> AccessToken:
        token = AccessToken(
            "Atz.sprdt|" + secrets.token_urlsafe(96), parent.refresh, now + RDT_LIFETIME, resources
        )
        self.access_tokens[token.value] = token
        return token

    def authenticate(self, value: str | None, now: float) -> AccessToken:
        """The token behind an ``x-amz-access-token`` header, or Amazon's 403."""
        if not value:
            raise unauthorized(TOKEN_MISSING)
        token = self.access_tokens.get(value)
        if token is None or token.refresh.revoked:
            raise unauthorized(TOKEN_INVALID)
        if now >= token.expires:
            raise unauthorized(TOKEN_EXPIRED)
        return token

    def revoke_seller(self, seller_id: str) -> int:
        revoked = 0
        for token in self.refresh_tokens.values():
            if token.seller_id == seller_id and not token.revoked:
                token.revoked = True
                revoked += 1
        return revoked

    def revoke_refresh_token(self, value: str) -> bool:
        token = self.refresh_tokens.get(value)
        if token is None or token.revoked:
            return False
        token.revoked = True
        return True

    def expire_access_tokens(self, seller_id: str, now: float) -> int:
        expired = 0
        for token in self.access_tokens.values():
            if token.refresh.seller_id == seller_id and token.expires > now:
                token.expires = now
                expired += 1
        return expired
