"""The inspection API under ``/_sim/``: not Amazon's, for tests, demos and benchmarks."""

from __future__ import annotations

import secrets
import string
from datetime import datetime
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field, field_validator

from keybuzz.simulator.clock import iso
from keybuzz.simulator.faults import FaultKind, ScriptedFault
from keybuzz.simulator.gateway import simulator_of
from keybuzz.simulator.marketplaces import marketplace_ids_from_codes
from keybuzz.simulator.records import AddressFields, Status
from keybuzz.simulator.render_v2026 import EVERYTHING, order_v2026
from keybuzz.simulator.settings import FaultSettings
from keybuzz.simulator.state import Seller, SellerSpec, Simulator, UnknownOrder, UnknownSeller

router = APIRouter(prefix="/_sim", tags=["inspection"])
SimulatorDep = Annotated[Simulator, Depends(simulator_of)]


def new_seller_id() -> str:
    return "A" + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(13))


class NewSeller(BaseModel):
    seller_id: str = Field(default_factory=new_seller_id)
    orders: int = Field(default=100, ge=0, le=1_000_000)
    days: int = Field(default=90, ge=1, le=730)
    seed: int = 0
    marketplaces: list[str] = Field(default_factory=lambda: ["FR"], description="Codes or ids.")
    store_name: str = "KeyBuzz Demo Store"
    live_orders_per_hour: float = Field(default=0.0, ge=0, le=10_000)
    anchor: datetime | None = Field(default=None, description="End of the data; default now.")

    @field_validator("marketplaces")
    @classmethod
    def _to_ids(cls, value: list[str]) -> list[str]:
        try:
            ids = marketplace_ids_from_codes(",".join(value))
        except KeyError as error:
            raise ValueError(f"unknown marketplace {error}") from None
        if not ids:
            raise ValueError("at least one marketplace is required")
        return ids


class AddressChange(BaseModel):
    name: str | None = None
    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    region: str | None = None
    postal_code: str | None = None
    phone: str | None = None


class OrderChange(BaseModel):
    status: Status | None = Field(default=None, description="v0 status; omitted = unchanged.")
    buyer_name: str | None = None
    address: AddressChange | None = None


class NewOrders(BaseModel):
    count: int = Field(default=1, ge=1, le=100_000)


class Revocation(BaseModel):
    refresh_token: str | None = None


class ConsentChoice(BaseModel):
    seller_id: str | None = None
    refuses: bool | None = None


class RedirectUris(BaseModel):
    redirect_uris: list[str]


class ClockChange(BaseModel):
    advance_seconds: float | None = None
    offset_seconds: float | None = None


class ScriptedFaultIn(BaseModel):
    kind: FaultKind
    operation: str | None = None
    delay: float = Field(default=0.0, ge=0, le=120)


class FaultScript(BaseModel):
    faults: list[ScriptedFaultIn]


class RateScale(BaseModel):
    rate_scale: float = Field(gt=0)


def _seller(simulator: Simulator, seller_id: str) -> Seller:
    try:
        return simulator.seller(seller_id)
    except UnknownSeller:
        raise HTTPException(404, f"Unknown seller {seller_id}") from None


def _seller_summary(seller: Seller, now: int) -> dict[str, Any]:
    return {
        "seller_id": seller.seller_id,
        "store_name": seller.spec.store_name,
        "marketplaces": list(seller.marketplaces),
        "orders": len(seller.book.visible(now)),
        "seed": seller.spec.seed,
        "anchor": iso(seller.anchor),
    }


@router.get("")
def overview(simulator: SimulatorDep) -> dict[str, Any]:
    settings = simulator.settings
    with simulator.lock:
        now = simulator.now()
        return {
            "now": iso(now),
            "clock_offset_seconds": simulator.clock.offset,
            "rate_scale": simulator.limiter.rate_scale,
            "app": {
                "client_id": settings.client_id,
                "client_secret": settings.client_secret.get_secret_value(),
                "application_id": settings.application_id,
                "redirect_uris": simulator.redirect_uris,
                "draft": settings.draft_app,
            },
            "consent": {
                "seller_id": simulator.consenting_seller,
                "refuses": simulator.consent_refuses,
            },
            "sellers": [_seller_summary(s, now) for s in simulator.sellers.values()],
        }


@router.post("/sellers", status_code=201)
def create_seller(body: NewSeller, simulator: SimulatorDep) -> dict[str, Any]:
    spec = SellerSpec(
        seller_id=body.seller_id,
        orders=body.orders,
        days=body.days,
        seed=body.seed,
        marketplaces=tuple(body.marketplaces),
        store_name=body.store_name,
        live_orders_per_hour=body.live_orders_per_hour,
        anchor=int(body.anchor.timestamp()) if body.anchor else None,
    )
    seller = simulator.create_seller(spec)
    return _seller_summary(seller, simulator.now())


@router.post("/sellers/{seller_id}/authorize")
def authorize(seller_id: str, simulator: SimulatorDep) -> dict[str, str]:
    try:
        return {"refresh_token": simulator.authorize(seller_id).value}
    except UnknownSeller:
        raise HTTPException(404, f"Unknown seller {seller_id}") from None


@router.post("/sellers/{seller_id}/revoke")
def revoke(seller_id: str, body: Revocation, simulator: SimulatorDep) -> dict[str, int]:
    return {"revoked": simulator.revoke(seller_id, body.refresh_token)}


@router.post("/sellers/{seller_id}/expire-access-tokens")
def expire_access_tokens(seller_id: str, simulator: SimulatorDep) -> dict[str, int]:
    return {"expired": simulator.expire_access_tokens(seller_id)}


@router.post("/sellers/{seller_id}/orders", status_code=201)
def add_orders(seller_id: str, body: NewOrders, simulator: SimulatorDep) -> dict[str, Any]:
    _seller(simulator, seller_id)
    orders = simulator.add_orders(seller_id, body.count)
    return {"order_ids": [order.order_id for order in orders]}


@router.patch("/sellers/{seller_id}/orders/{order_id}")
def change_order(
    seller_id: str, order_id: str, body: OrderChange, simulator: SimulatorDep
) -> dict[str, Any]:
    _seller(simulator, seller_id)
    try:
        fields = body.address.model_dump(exclude_none=True) if body.address else None
        address = cast(AddressFields | None, fields)
        order = simulator.change_order(seller_id, order_id, body.status, body.buyer_name, address)
    except UnknownOrder:
        raise HTTPException(404, f"Unknown order {order_id}") from None
    with simulator.lock:
        now = simulator.now()
        view = order_v2026(order, now, EVERYTHING)
        view["orderStatus"] = order.status_at(now).value
        return view


@router.get("/sellers/{seller_id}/ground-truth")
def ground_truth(seller_id: str, simulator: SimulatorDep) -> dict[str, Any]:
    _seller(simulator, seller_id)
    return simulator.ground_truth(seller_id)


@router.put("/consent")
def choose_consent(body: ConsentChoice, simulator: SimulatorDep) -> dict[str, Any]:
    with simulator.lock:
        if body.seller_id is not None:
            if body.seller_id not in simulator.sellers:
                raise HTTPException(404, f"Unknown seller {body.seller_id}")
            simulator.consenting_seller = body.seller_id
        if body.refuses is not None:
            simulator.consent_refuses = body.refuses
        return {"seller_id": simulator.consenting_seller, "refuses": simulator.consent_refuses}


@router.put("/redirect-uris")
def set_redirect_uris(body: RedirectUris, simulator: SimulatorDep) -> dict[str, list[str]]:
    with simulator.lock:
        simulator.redirect_uris = list(body.redirect_uris)
        return {"redirect_uris": simulator.redirect_uris}


@router.put("/faults")
def set_faults(body: FaultSettings, simulator: SimulatorDep) -> FaultSettings:
    simulator.set_faults(body)
    return body


@router.delete("/faults")
def clear_faults(simulator: SimulatorDep) -> FaultSettings:
    simulator.set_faults(FaultSettings())
    return simulator.faults.settings


@router.post("/faults/script")
def script_faults(body: FaultScript, simulator: SimulatorDep) -> dict[str, int]:
    simulator.script_faults([ScriptedFault(f.kind, f.operation, f.delay) for f in body.faults])
    return {"scripted": len(body.faults)}


@router.post("/clock")
def move_clock(body: ClockChange, simulator: SimulatorDep) -> dict[str, Any]:
    if body.offset_seconds is not None:
        simulator.set_clock_offset(body.offset_seconds)
    if body.advance_seconds is not None:
        simulator.advance_clock(body.advance_seconds)
    return {"now": iso(simulator.now()), "offset_seconds": simulator.clock.offset}


@router.put("/rate-scale")
def set_rate_scale(body: RateScale, simulator: SimulatorDep) -> dict[str, float]:
    simulator.set_rate_scale(body.rate_scale)
    return {"rate_scale": body.rate_scale}


@router.get("/counters")
def counters(simulator: SimulatorDep) -> dict[str, Any]:
    return simulator.counters()


@router.delete("/counters")
def reset_counters(simulator: SimulatorDep) -> dict[str, Any]:
    simulator.reset_counters()
    return {}
