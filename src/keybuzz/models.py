"""Every SQLAlchemy model, imported in one place so metadata is complete (Alembic, tests)."""

from __future__ import annotations


def import_all_models() -> None:
    import keybuzz.marketplaces.models
    import keybuzz.orders.models
    import keybuzz.ratelimits.models
    import keybuzz.secrets.models
    import keybuzz.sync.models
    import keybuzz.tenants.models  # noqa: F401
