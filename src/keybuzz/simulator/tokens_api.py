"""Tokens API 2021-03-01 ``createRestrictedDataToken``: RDTs for the v0 PII resources.

Which roles a data element needs (spapi.md §7): ``shippingAddress`` -> Direct-to-Consumer
Shipping; ``buyerInfo`` and ``buyerTaxInformation`` -> Tax Invoicing or Tax Remittance.
"""

from __future__ import annotations

import json
import re
from typing import Any

from keybuzz.simulator.credentials import RDT_LIFETIME, RestrictedResource
from keybuzz.simulator.errors import SpApiError, unauthorized
from keybuzz.simulator.gateway import Call
from keybuzz.simulator.render_v2026 import D2C, TAX_ROLES

Json = dict[str, Any]
MAX_RESOURCES = 50
METHODS = ("GET", "PUT", "POST", "DELETE")
DATA_ELEMENTS = ("buyerInfo", "shippingAddress", "buyerTaxInformation")
_ID = r"(\{[A-Za-z]+\}|[^/{}]+)"
# path pattern -> (needs dataElements, roles needed when it has none)
RESTRICTED_PATHS: dict[re.Pattern[str], tuple[bool, frozenset[str]]] = {
    re.compile(r"^/orders/v0/orders$"): (True, frozenset()),
    re.compile(rf"^/orders/v0/orders/{_ID}$"): (True, frozenset()),
    re.compile(rf"^/orders/v0/orders/{_ID}/orderItems$"): (True, frozenset()),
    re.compile(rf"^/orders/v0/orders/{_ID}/address$"): (False, frozenset({D2C})),
    re.compile(rf"^/orders/v0/orders/{_ID}/buyerInfo$"): (False, TAX_ROLES),
    re.compile(rf"^/orders/v0/orders/{_ID}/orderItems/buyerInfo$"): (False, TAX_ROLES),
    re.compile(rf"^/reports/2021-06-30/documents/{_ID}$"): (False, frozenset()),
}
ELEMENT_ROLES = {
    "shippingAddress": frozenset({D2C}),
    "buyerInfo": TAX_ROLES,
    "buyerTaxInformation": TAX_ROLES,
}


def invalid_request(details: str) -> SpApiError:
    return SpApiError(
        400, "InvalidRequest", "Request is missing or has invalid parameters", details
    )


def _resource(raw: Any, roles: frozenset[str]) -> RestrictedResource:
    if not isinstance(raw, dict):
        raise invalid_request("Resource not provided.")
    method, path, elements = raw.get("method"), raw.get("path"), raw.get("dataElements")
    if method not in METHODS or not isinstance(path, str) or not path:
        raise invalid_request("Resource not provided.")
    rule = next((rule for pattern, rule in RESTRICTED_PATHS.items() if pattern.match(path)), None)
    if rule is None:
        raise invalid_request(f"Resource {method} {path} is not a restricted resource.")
    needs_elements, path_roles = rule
    if elements is None:
        elements = []
    if not isinstance(elements, list) or any(e not in DATA_ELEMENTS for e in elements):
        raise invalid_request(f"Invalid dataElements for {path}.")
    if needs_elements and not elements:
        raise invalid_request(f"dataElements is required for {path}.")
    for needed in [path_roles, *(ELEMENT_ROLES[e] for e in elements)]:
        if needed and not needed & roles:
            raise unauthorized("The application does not have the role this data requires.")
    return RestrictedResource(method, path, frozenset(elements))


def create_restricted_data_token(call: Call, raw_body: bytes) -> Json:
    try:
        body = json.loads(raw_body or b"null")
    except ValueError:
        raise invalid_request("The request body is not valid JSON.") from None
    resources = body.get("restrictedResources") if isinstance(body, dict) else None
    if not isinstance(resources, list) or not resources:
        raise invalid_request("Resource not provided.")
    if len(resources) > MAX_RESOURCES:
        raise invalid_request(f"At most {MAX_RESOURCES} restricted resources are allowed.")
    roles = frozenset(call.simulator.settings.pii_roles)
    parsed = tuple(_resource(raw, roles) for raw in resources)
    token = call.simulator.credentials.issue_rdt(call.token, parsed, call.simulator.clock.time())
    return {"restrictedDataToken": token.value, "expiresIn": RDT_LIFETIME}
