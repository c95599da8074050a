"""Reports API 2021-06-30 and Sellers API payloads."""

from __future__ import annotations

from pydantic import ConfigDict, Field
from pydantic.alias_generators import to_camel

from keybuzz.amazon.models_common import AmazonModel, AmazonTime


class CamelModel(AmazonModel):
    model_config = ConfigDict(alias_generator=to_camel)


class CreateReportResponse(CamelModel):
    report_id: str


class Report(CamelModel):
    report_id: str
    report_type: str
    processing_status: str
    """``IN_QUEUE``, ``IN_PROGRESS``, ``DONE``, ``CANCELLED`` (no data) or ``FATAL``."""
    data_start_time: AmazonTime | None = None
    data_end_time: AmazonTime | None = None
    marketplace_ids: list[str] = Field(default_factory=list)
    created_time: AmazonTime | None = None
    processing_start_time: AmazonTime | None = None
    processing_end_time: AmazonTime | None = None
    report_document_id: str | None = None


class ReportDocument(CamelModel):
    report_document_id: str
    url: str
    """Pre-signed, valid five minutes; never log it."""
    compression_algorithm: str | None = None


class MarketplaceInfo(CamelModel):
    id: str
    name: str | None = None
    country_code: str | None = None
    default_currency_code: str | None = None
    default_language_code: str | None = None
    domain_name: str | None = None


class Participation(CamelModel):
    is_participating: bool
    has_suspended_listings: bool | None = None


class MarketplaceParticipation(CamelModel):
    marketplace: MarketplaceInfo
    participation: Participation
    store_name: str | None = None


class GetMarketplaceParticipationsResponse(CamelModel):
    payload: list[MarketplaceParticipation] = Field(default_factory=list)
