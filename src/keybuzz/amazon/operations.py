"""The SP-API operations KeyBuzz calls, with Amazon's default usage plans (spapi.md §3).

A usage plan is a token bucket: ``rate`` requests a second refill it up to ``burst``. These are
the published defaults; the client adopts the rate Amazon reports in ``x-amzn-RateLimit-Limit``
(dynamic usage plans differ per seller).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote


@dataclass(frozen=True, slots=True)
class UsagePlan:
    rate: float
    burst: int


@dataclass(frozen=True, slots=True)
class Operation:
    name: str
    """Unique across APIs (``getOrder`` exists in v0 and v2026): the rate-limit bucket's key."""
    method: str
    path: str
    """Path template, e.g. ``/orders/v0/orders/{orderId}``."""
    plan: UsagePlan

    def url_path(self, **path_params: str) -> str:
        return self.path.format(**{k: quote(v, safe="") for k, v in path_params.items()})


def _op(name: str, method: str, path: str, rate: float, burst: int) -> Operation:
    return Operation(name, method, path, UsagePlan(rate, burst))


V0_ORDERS = "/orders/v0/orders"
V0_ORDER = "/orders/v0/orders/{orderId}"
V0_ORDER_ITEMS = "/orders/v0/orders/{orderId}/orderItems"

GET_ORDERS = _op("v0.getOrders", "GET", V0_ORDERS, 0.0167, 20)
GET_ORDER_V0 = _op("v0.getOrder", "GET", V0_ORDER, 0.5, 30)
GET_ORDER_ITEMS = _op("v0.getOrderItems", "GET", V0_ORDER_ITEMS, 0.5, 30)
SEARCH_ORDERS = _op("v2026.searchOrders", "GET", "/orders/2026-01-01/orders", 0.0056, 20)
GET_ORDER = _op("v2026.getOrder", "GET", "/orders/2026-01-01/orders/{orderId}", 0.5, 30)
CREATE_RESTRICTED_DATA_TOKEN = _op(
    "tokens.createRestrictedDataToken", "POST", "/tokens/2021-03-01/restrictedDataToken", 1.0, 10
)
CREATE_REPORT = _op("reports.createReport", "POST", "/reports/2021-06-30/reports", 0.0167, 15)
GET_REPORT = _op("reports.getReport", "GET", "/reports/2021-06-30/reports/{reportId}", 2.0, 15)
GET_REPORT_DOCUMENT = _op(
    "reports.getReportDocument",
    "GET",
    "/reports/2021-06-30/documents/{reportDocumentId}",
    0.0167,
    15,
)
GET_MARKETPLACE_PARTICIPATIONS = _op(
    "sellers.getMarketplaceParticipations",
    "GET",
    "/sellers/v1/marketplaceParticipations",
    0.016,
    15,
)

# Amazon's sandbox hosts: one 5 rps / 15 burst plan for every call (developer docs, sandbox page).
SANDBOX_BUCKET = "sandbox"
SANDBOX_PLAN = UsagePlan(5.0, 15)
