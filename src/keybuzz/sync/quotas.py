"""A seller's rate-limit buckets travel with its jobs: a step may run on any worker process, so
the state the last step left (tokens, rates, as of a wall-clock time) is saved on the
connection with every checkpoint and restored by the next step, wherever it runs."""

from __future__ import annotations

from typing import Any

from keybuzz.amazon.client import SpApiClient
from keybuzz.amazon.operations import GET_ORDERS, SEARCH_ORDERS, Operation
from keybuzz.marketplaces.models import MarketplaceConnection
from keybuzz.sync.plan import Supply

LIST_OPERATIONS = {"v2026": SEARCH_ORDERS, "v0": GET_ORDERS}


def restore(client: SpApiClient, connection: MarketplaceConnection) -> None:
    if connection.quota_state:
        client.restore_buckets(connection.quota_state)


def snapshot(client: SpApiClient) -> dict[str, Any]:
    return client.bucket_snapshot().model_dump(mode="json")


def tokens_now(client: SpApiClient, operation: Operation) -> float:
    return client.transport.bucket(operation).tokens


def supplies(client: SpApiClient, apis: list[str]) -> list[Supply]:
    """What the list operations ``apis`` can deliver, as their buckets stand."""
    buckets = [client.transport.bucket(LIST_OPERATIONS[api]) for api in apis]
    return [Supply(tokens=bucket.tokens, rate=bucket.rate) for bucket in buckets]
