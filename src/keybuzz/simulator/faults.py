"""Fault injection for SP-API calls: random by rate (seeded), or scripted for the next calls.

``malformed_order`` (scripted only) keeps the answer valid but breaks one order in it: the first
order of a searchOrders / getOrders page or a getOrder answer gets a creation date that is not a
date, and a report requested with it has an unreadable first line. A client must set that one
order aside and keep the rest.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from keybuzz.simulator.settings import FaultSettings


class FaultKind(StrEnum):
    INTERNAL_ERROR = "500"
    SERVICE_UNAVAILABLE = "503"
    EXPIRED_TOKEN = "expired_token"
    DROP = "drop"
    MALFORMED_JSON = "malformed_json"
    SLOW = "slow"
    MALFORMED_ORDER = "malformed_order"


@dataclass(frozen=True, slots=True)
class Fault:
    kind: FaultKind | None = None
    delay: float = 0.0


@dataclass(frozen=True, slots=True)
class ScriptedFault:
    kind: FaultKind
    operation: str | None = None
    delay: float = 0.0


NO_FAULT = Fault()
NOT_A_DATE = "not-a-date"


def break_first_order(body: Any) -> Any:
    """``body`` with its first order's creation date replaced by ``NOT_A_DATE``: v2026
    ``orders[0].createdTime`` / ``order.createdTime``, v0 ``payload.Orders[0].PurchaseDate`` /
    ``payload.PurchaseDate``. Any other body is left as it is."""
    if not isinstance(body, dict):
        return body
    if isinstance(body.get("orders"), list) and body["orders"]:
        body["orders"] = [{**body["orders"][0], "createdTime": NOT_A_DATE}, *body["orders"][1:]]
    elif isinstance(body.get("order"), dict):
        body["order"] = {**body["order"], "createdTime": NOT_A_DATE}
    elif isinstance(payload := body.get("payload"), dict):
        if isinstance(payload.get("Orders"), list) and payload["Orders"]:
            orders = payload["Orders"]
            payload = {
                **payload,
                "Orders": [{**orders[0], "PurchaseDate": NOT_A_DATE}, *orders[1:]],
            }
        elif "AmazonOrderId" in payload:
            payload = {**payload, "PurchaseDate": NOT_A_DATE}
        body["payload"] = payload
    return body


class FaultInjector:
    def __init__(self, settings: FaultSettings) -> None:
        self.configure(settings)

    def configure(self, settings: FaultSettings) -> None:
        self.settings = settings
        self._rng = random.Random(settings.seed)
        self._script: deque[ScriptedFault] = deque()

    def script(self, faults: list[ScriptedFault]) -> None:
        """Faults for the next matching calls, in order, before any random draw."""
        self._script.extend(faults)

    def draw(self, operation: str) -> Fault:
        scripted = self._next_scripted(operation)
        if scripted is not None:
            return scripted
        settings = self.settings
        if settings.operations is not None and operation not in settings.operations:
            return NO_FAULT
        # One draw per knob, always in the same order, keeps a seeded run reproducible.
        slow, error, status, expired, drop, malformed = (self._rng.random() for _ in range(6))
        delay = settings.slow_seconds if slow < settings.slow_rate else 0.0
        if error < settings.error_rate:
            kind = FaultKind.INTERNAL_ERROR if status < 0.5 else FaultKind.SERVICE_UNAVAILABLE
            return Fault(kind, delay)
        if expired < settings.expired_token_rate:
            return Fault(FaultKind.EXPIRED_TOKEN, delay)
        if drop < settings.drop_rate:
            return Fault(FaultKind.DROP, delay)
        if malformed < settings.malformed_json_rate:
            return Fault(FaultKind.MALFORMED_JSON, delay)
        return Fault(FaultKind.SLOW, delay) if delay else NO_FAULT

    def _next_scripted(self, operation: str) -> Fault | None:
        for index, scripted in enumerate(self._script):
            if scripted.operation in (None, operation):
                del self._script[index]
                delay = scripted.delay or (
                    self.settings.slow_seconds if scripted.kind is FaultKind.SLOW else 0.0
                )
                return Fault(scripted.kind, delay)
        return None
