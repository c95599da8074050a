from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from keybuzz.config import Settings, get_settings
from keybuzz.db import run_in_transaction
from keybuzz.secrets.keys import EnvironmentKeys, KeyFile, KeyRing, SecretKey, key_source
from keybuzz.secrets.local import Reencryption, reencrypt_all
from keybuzz.secrets.service import open_secret_backend
from keybuzz.secrets.store import SecretStoreError, SecretStoreMisconfigured, SecretUnreadable
from keybuzz.secrets.vault import app_policy

app = typer.Typer(
    help="Tenant secrets (Amazon refresh tokens): status and key rotation.", no_args_is_help=True
)
# Plain text, unwrapped: key ids and paths must survive copy and paste.
console = Console(soft_wrap=True, markup=False, highlight=False)

# Passes after the rotation's transaction, catching secrets that a process still holding the
# old key committed meanwhile; the old key is retired only after a pass finds none.
LATE_WRITE_SWEEPS = 3

ENVIRONMENT_ROTATION_STEPS = """\
KEYBUZZ_SECRETS_KEY comes from the environment, so rotation takes these steps:
  1. keybuzz secrets generate-key            (prints a new key; store it in your secret manager)
  2. on every KeyBuzz process set
       KEYBUZZ_SECRETS_PREVIOUS_KEY=<the current KEYBUZZ_SECRETS_KEY>
       KEYBUZZ_SECRETS_KEY=<the new key>
     and restart them (they now encrypt with the new key and still read the old one)
  3. keybuzz secrets rotate-key              (re-encrypts every secret under the new key)
  4. remove KEYBUZZ_SECRETS_PREVIOUS_KEY everywhere and restart; destroy the old key."""


@app.command("status")
def status() -> None:
    """Show the backend, its keys or server, and how many secrets it holds (never values)."""
    settings = get_settings()

    async def work(session: AsyncSession) -> list[tuple[str, str]]:
        backend = open_secret_backend(settings)
        try:
            return await backend.describe(session)
        finally:
            await backend.aclose()

    table = Table("", "", show_header=False, box=None)
    for label, value in run_in_transaction(settings, work):
        table.add_row(label, value)
    console.print(table)


@app.command("generate-key")
def generate_key() -> None:
    """Print a new random key for KEYBUZZ_SECRETS_KEY (it is not stored anywhere)."""
    print(SecretKey.generate().encoded())


@app.command("vault-policy")
def vault_policy() -> None:
    """Print the Vault policy to grant KeyBuzz (for KEYBUZZ_VAULT_MOUNT)."""
    print(app_policy(get_settings().vault_mount), end="")


@app.command("rotate-key")
def rotate_key() -> None:
    """Re-encrypt every local secret under a new key, then retire the old key."""
    settings = get_settings()
    if settings.secrets_backend != "local":
        raise SecretStoreMisconfigured(
            "rotate-key re-encrypts the local store; with KEYBUZZ_SECRETS_BACKEND=vault, Vault "
            "encrypts its own storage (rotate it with `vault operator rotate`)."
        )
    keys = key_source(settings)
    if isinstance(keys, KeyFile):
        _rotate_key_file(settings, keys)
    else:
        _rotate_environment_key(settings, keys)


def _rotate_key_file(settings: Settings, keys: KeyFile) -> None:
    old = keys.current()
    new = SecretKey.generate()
    # The new key is on disk before any secret depends on it, and the old one stays until
    # no secret does: a crash at any point loses nothing.
    keys.replace(KeyRing(new, old.keys))
    console.print(f"Added key {new.id} to {keys.path}; re-encrypting...")
    done = _reencrypt_everything(settings, keys)
    keys.replace(KeyRing(new))
    retired = ", ".join(key.id for key in old.keys)
    console.print(
        f"Re-encrypted {done.reencrypted} of {done.total} stored secrets; all are now under "
        f"key {new.id}. Retired key {retired} from {keys.path}."
    )
    console.print("Back up the new key file: the old key no longer decrypts anything.")


def _rotate_environment_key(settings: Settings, keys: EnvironmentKeys) -> None:
    ring = keys.current()
    if not ring.others:
        console.print(ENVIRONMENT_ROTATION_STEPS)
        raise typer.Exit(1)
    done = _reencrypt_everything(settings, keys)
    previous = ", ".join(key.id for key in ring.others)
    console.print(
        f"Re-encrypted {done.reencrypted} of {done.total} stored secrets; all are now under "
        f"key {ring.primary.id} (KEYBUZZ_SECRETS_KEY)."
    )
    console.print(
        f"Now remove KEYBUZZ_SECRETS_PREVIOUS_KEY (key {previous}) from every KeyBuzz process "
        "and restart them; the previous key is no longer needed."
    )


def _reencrypt_everything(settings: Settings, keys: KeyFile | EnvironmentKeys) -> Reencryption:
    try:
        done = run_in_transaction(settings, lambda session: reencrypt_all(session, keys.current()))
    except SecretUnreadable:
        console.print(
            "Rotation aborted: no secret was changed and no key was retired. A secret that "
            "cannot be decrypted must be written again (the tenant reconnects) or deleted."
        )
        raise
    reencrypted = done.reencrypted
    for _ in range(LATE_WRITE_SWEEPS):
        late = run_in_transaction(
            settings,
            lambda session: reencrypt_all(session, keys.current()),
            apply_migrations=False,
        )
        reencrypted += late.reencrypted
        if late.reencrypted == 0:
            return Reencryption(late.key_id, reencrypted, max(late.total - reencrypted, 0))
    raise SecretStoreError(
        "Secrets are still being written under the old key; it was kept. Restart the KeyBuzz "
        "processes that still use it, then run `keybuzz secrets rotate-key` again."
    )
