"""docs/secrets.md stays true to the code it documents."""

from __future__ import annotations

from pathlib import Path

from keybuzz.config import Settings
from keybuzz.secrets.vault import app_policy

DOC = Path(__file__).resolve().parents[2] / "docs" / "secrets.md"


def test_the_documented_vault_policy_is_the_one_the_tests_grant() -> None:
    assert f"```hcl\n{app_policy('secret')}```" in DOC.read_text()


def test_every_secret_store_setting_is_documented() -> None:
    names = [
        f"KEYBUZZ_{field.upper()}"
        for field in Settings.model_fields
        if field.startswith(("secrets_", "vault_"))
    ]

    assert len(names) == 11
    assert [name for name in names if f"`{name}`" not in DOC.read_text()] == []
