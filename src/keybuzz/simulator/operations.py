"""The SP-API operations the simulator serves, by the name used in counters and fault filters."""

from __future__ import annotations

from functools import cache

from keybuzz.simulator.spec import UsagePlan, operation

V0 = "ordersV0.json"
V2026 = "orders_2026-01-01.json"
REPORTS = "reports_2021-06-30.json"
SELLERS = "sellers.json"
TOKENS = "tokens_2021-03-01.json"

SIMULATED: dict[str, tuple[str, str]] = {
    "v0.getOrders": (V0, "getOrders"),
    "v0.getOrder": (V0, "getOrder"),
    "v0.getOrderItems": (V0, "getOrderItems"),
    "v0.getOrderAddress": (V0, "getOrderAddress"),
    "v0.getOrderBuyerInfo": (V0, "getOrderBuyerInfo"),
    "v0.getOrderItemsBuyerInfo": (V0, "getOrderItemsBuyerInfo"),
    "v2026.searchOrders": (V2026, "searchOrders"),
    "v2026.getOrder": (V2026, "getOrder"),
    "reports.createReport": (REPORTS, "createReport"),
    "reports.getReport": (REPORTS, "getReport"),
    "reports.getReportDocument": (REPORTS, "getReportDocument"),
    "sellers.getMarketplaceParticipations": (SELLERS, "getMarketplaceParticipations"),
    "tokens.createRestrictedDataToken": (TOKENS, "createRestrictedDataToken"),
}
SANDBOX = "sandbox"
# The sandbox has one usage plan for every call (developer docs, "SP-API sandbox").
SANDBOX_PLAN = UsagePlan(rate=5.0, burst=15)


@cache
def usage_plan(name: str) -> UsagePlan:
    if name == SANDBOX:
        return SANDBOX_PLAN
    model_file, operation_id = SIMULATED[name]
    return operation(model_file, operation_id).usage_plan
