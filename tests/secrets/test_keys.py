"""Where the local store's keys come from: the generated key file, or the environment."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from keybuzz.config import Settings
from keybuzz.secrets import SecretStoreMisconfigured, open_secret_backend
from keybuzz.secrets.keys import KeyFile, KeyRing, SecretKey, key_source
from keybuzz.secrets.local import LocalSecretBackend


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _key_lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line and not line.startswith("#")]


def test_the_first_start_generates_a_key_file_only_its_owner_can_read(settings: Settings) -> None:
    backend = open_secret_backend(settings)

    key_file = settings.data_dir / "secrets.key"
    assert backend.name == "local"
    assert _mode(key_file) == 0o600
    lines = _key_lines(key_file)
    assert len(lines) == 1
    assert len(base64.urlsafe_b64decode(lines[0])) == 32


def test_a_restart_reuses_the_key_file(settings: Settings) -> None:
    first = key_source(settings).current()
    again = key_source(settings).current()

    assert again.primary.id == first.primary.id


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_a_key_file_readable_by_group_or_others_is_refused(settings: Settings, mode: int) -> None:
    open_secret_backend(settings)
    key_file = settings.data_dir / "secrets.key"
    os.chmod(key_file, mode)

    with pytest.raises(SecretStoreMisconfigured) as refused:
        open_secret_backend(settings)

    message = str(refused.value)
    assert f"Key file {key_file} has mode {mode:04o}: group or others may access it" in message
    assert f"chmod 600 {key_file}" in message
    assert _key_lines(key_file)[0] not in message


def test_a_configured_key_file_path_is_used(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "elsewhere" / "keybuzz.key"
    configured = settings.model_copy(update={"secrets_key_file": path})

    open_secret_backend(configured)

    assert _mode(path) == 0o600
    assert not (settings.data_dir / "secrets.key").exists()


def test_a_key_file_that_disappears_is_a_clear_error(settings: Settings) -> None:
    backend = open_secret_backend(settings)
    assert isinstance(backend, LocalSecretBackend)
    (settings.data_dir / "secrets.key").unlink()

    with pytest.raises(SecretStoreMisconfigured, match="is missing: every locally stored secret"):
        backend.keys.current()


def test_a_replaced_key_file_is_picked_up_without_a_restart(settings: Settings) -> None:
    keys = key_source(settings)
    assert isinstance(keys, KeyFile)
    old = keys.current()
    new = SecretKey.generate()

    KeyFile(keys.path).replace(KeyRing(new, old.keys))

    assert keys.current() == KeyRing(new, (old.primary,))
    assert _mode(keys.path) == 0o600


def test_an_environment_key_needs_no_file(settings: Settings) -> None:
    key = SecretKey.generate()
    configured = settings.model_copy(update={"secrets_key": SecretStr(key.encoded())})

    ring = key_source(configured).current()

    assert ring == KeyRing(key)
    assert not (settings.data_dir / "secrets.key").exists()


def test_the_previous_environment_key_still_decrypts(settings: Settings) -> None:
    new, previous = SecretKey.generate(), SecretKey.generate()
    configured = settings.model_copy(
        update={
            "secrets_key": SecretStr(new.encoded()),
            "secrets_previous_key": SecretStr(previous.encoded()),
        }
    )

    assert key_source(configured).current() == KeyRing(new, (previous,))


@pytest.mark.parametrize(
    "value",
    ["too-short", base64.urlsafe_b64encode(b"x" * 31).decode(), "!!not base64 at all!!" * 3],
)
def test_an_invalid_environment_key_is_refused_without_echoing_it(
    settings: Settings, value: str
) -> None:
    configured = settings.model_copy(update={"secrets_key": SecretStr(value)})

    with pytest.raises(SecretStoreMisconfigured) as refused:
        key_source(configured)

    assert "KEYBUZZ_SECRETS_KEY is not a 32-byte base64 key" in str(refused.value)
    assert "keybuzz secrets generate-key" in str(refused.value)
    assert value not in str(refused.value)


def test_a_previous_key_without_a_current_one_is_refused(settings: Settings) -> None:
    configured = settings.model_copy(
        update={"secrets_previous_key": SecretStr(SecretKey.generate().encoded())}
    )

    with pytest.raises(SecretStoreMisconfigured, match="without KEYBUZZ_SECRETS_KEY"):
        key_source(configured)


def test_a_key_never_shows_its_material() -> None:
    key = SecretKey.generate()

    assert key.encoded() not in repr(key)
    assert key.encoded() not in repr(KeyRing(key))
    assert repr(key.material) not in repr(KeyRing(key))
