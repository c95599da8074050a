"""Keys of the local secret store: parsing, the key file, and AES-256-GCM sealing.

A key ring has one primary key (encrypts) and older keys (decrypt only, during a rotation).
Keys come from ``KEYBUZZ_SECRETS_KEY`` (+ ``KEYBUZZ_SECRETS_PREVIOUS_KEY``) or from a key file
holding one key per line, primary first.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keybuzz.config import Settings
from keybuzz.secrets.store import (
    SecretCorrupted,
    SecretKeyUnknown,
    SecretStoreMisconfigured,
)

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
KEY_FILE_NAME = "secrets.key"
KEY_FILE_HEADER = (
    "# KeyBuzz local secret store keys: the first encrypts, the others only decrypt.\n"
    "# Losing this file loses every stored secret. Never commit or share it.\n"
)
GENERATE_HINT = "generate one with `keybuzz secrets generate-key`"


@dataclass(frozen=True)
class SecretKey:
    id: str
    material: bytes = field(repr=False)

    @classmethod
    def from_material(cls, material: bytes) -> SecretKey:
        # The id names a key in rows and messages; a hash of 256 random bits reveals nothing.
        digest = hashlib.sha256(b"keybuzz-secrets-key-id\0" + material).hexdigest()
        return cls(id=digest[:16], material=material)

    @classmethod
    def generate(cls) -> SecretKey:
        return cls.from_material(AESGCM.generate_key(bit_length=KEY_BYTES * 8))

    @classmethod
    def parse(cls, text: str, *, source: str) -> SecretKey:
        """A key written as url-safe (or standard) base64; ``source`` names it in errors."""
        cleaned = text.strip()
        try:
            material = base64.urlsafe_b64decode(
                cleaned.replace("+", "-").replace("/", "_") + "=" * (-len(cleaned) % 4)
            )
        except (binascii.Error, ValueError):
            material = b""
        if len(material) != KEY_BYTES:
            raise SecretStoreMisconfigured(
                f"{source} is not a {KEY_BYTES}-byte base64 key; {GENERATE_HINT}."
            )
        return cls.from_material(material)

    def encoded(self) -> str:
        return base64.urlsafe_b64encode(self.material).decode()


@dataclass(frozen=True)
class KeyRing:
    primary: SecretKey
    others: tuple[SecretKey, ...] = ()

    @property
    def keys(self) -> tuple[SecretKey, ...]:
        return (self.primary, *self.others)

    def get(self, key_id: str) -> SecretKey | None:
        return next((key for key in self.keys if key.id == key_id), None)


# --- Sealing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sealed:
    key_id: str
    nonce: bytes
    ciphertext: bytes


def associated_data(tenant_id: str, name: str, version: int) -> bytes:
    """What a ciphertext is bound to: moved to another tenant, name or version, it fails."""
    return json.dumps(["keybuzz.secret.v1", tenant_id, name, version]).encode()


def seal(ring: KeyRing, plaintext: bytes, *, tenant_id: str, name: str, version: int) -> Sealed:
    nonce = os.urandom(NONCE_BYTES)
    aad = associated_data(tenant_id, name, version)
    ciphertext = AESGCM(ring.primary.material).encrypt(nonce, plaintext, aad)
    return Sealed(key_id=ring.primary.id, nonce=nonce, ciphertext=ciphertext)


def unseal(ring: KeyRing, sealed: Sealed, *, tenant_id: str, name: str, version: int) -> bytes:
    key = ring.get(sealed.key_id)
    if key is None:
        raise SecretKeyUnknown(
            f"Secret {name} of tenant {tenant_id} (version {version}) is encrypted with key "
            f"{sealed.key_id}, which is not configured (configured: "
            f"{', '.join(k.id for k in ring.keys)}).",
            tenant_id=tenant_id,
            name=name,
            version=version,
        )
    aad = associated_data(tenant_id, name, version)
    try:
        if len(sealed.nonce) != NONCE_BYTES or len(sealed.ciphertext) < TAG_BYTES:
            raise InvalidTag
        return AESGCM(key.material).decrypt(sealed.nonce, sealed.ciphertext, aad)
    except InvalidTag:
        raise SecretCorrupted(
            f"Secret {name} of tenant {tenant_id} (version {version}) failed its integrity check: "
            "it was altered, truncated or copied from another row. It must be written again.",
            tenant_id=tenant_id,
            name=name,
            version=version,
        ) from None


# --- Where the keys come from -----------------------------------------------------------------


def key_file_path(settings: Settings) -> Path:
    if settings.secrets_key_file is not None:
        return settings.secrets_key_file
    return settings.data_dir / KEY_FILE_NAME


class EnvironmentKeys:
    """``KEYBUZZ_SECRETS_KEY``, and during a rotation ``KEYBUZZ_SECRETS_PREVIOUS_KEY``."""

    description = "environment (KEYBUZZ_SECRETS_KEY)"

    def __init__(self, ring: KeyRing) -> None:
        self._ring = ring

    @classmethod
    def from_settings(cls, settings: Settings) -> EnvironmentKeys:
        assert settings.secrets_key is not None
        primary = SecretKey.parse(
            settings.secrets_key.get_secret_value(), source="KEYBUZZ_SECRETS_KEY"
        )
        others: tuple[SecretKey, ...] = ()
        if settings.secrets_previous_key is not None:
            previous = SecretKey.parse(
                settings.secrets_previous_key.get_secret_value(),
                source="KEYBUZZ_SECRETS_PREVIOUS_KEY",
            )
            others = () if previous.id == primary.id else (previous,)
        return cls(KeyRing(primary, others))

    def current(self) -> KeyRing:
        return self._ring


class KeyFile:
    """A key file (mode 0600, refused if group or others may access it), re-read when replaced.

    Re-reading on change lets running processes pick up a rotation's new key at their next
    unit of work, instead of writing under a key that is about to be retired.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._signature: tuple[int, int, int] | None = None
        self._ring: KeyRing | None = None

    @property
    def description(self) -> str:
        return f"key file {self.path}"

    def current(self) -> KeyRing:
        try:
            info = self.path.stat()
        except FileNotFoundError:
            raise SecretStoreMisconfigured(
                f"Key file {self.path} is missing: every locally stored secret is unreadable "
                "without it. Restore it from backup."
            ) from None
        signature = (info.st_ino, info.st_mtime_ns, info.st_size)
        if self._ring is None or signature != self._signature:
            self._ring = self._load(info)
            self._signature = signature
        return self._ring

    def create_if_missing(self) -> None:
        if self.path.exists():
            return
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            self._write(KeyRing(SecretKey.generate()), replace=False)
        except FileExistsError:
            pass  # another process created it first; use theirs

    def replace(self, ring: KeyRing) -> None:
        """Write ``ring`` atomically: readers see the old file or the new one, never a mix."""
        self._write(ring, replace=True)

    def _load(self, info: os.stat_result) -> KeyRing:
        if not stat.S_ISREG(info.st_mode):
            raise SecretStoreMisconfigured(f"Key file {self.path} is not a regular file.")
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            raise SecretStoreMisconfigured(
                f"Key file {self.path} has mode {mode:04o}: group or others may access it. "
                f"Check who read it, then run `chmod 600 {self.path}`."
            )
        lines = [line.strip() for line in self.path.read_text().splitlines()]
        entries = [line for line in lines if line and not line.startswith("#")]
        if not entries:
            raise SecretStoreMisconfigured(f"Key file {self.path} holds no key.")
        keys = [
            SecretKey.parse(entry, source=f"line {n} of key file {self.path}")
            for n, entry in enumerate(entries, start=1)
        ]
        return KeyRing(keys[0], tuple(keys[1:]))

    def _write(self, ring: KeyRing, *, replace: bool) -> None:
        text = KEY_FILE_HEADER + "".join(f"{key.encoded()}\n" for key in ring.keys)
        # mkstemp creates the file with mode 0600 whatever the umask.
        fd, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            if replace:
                os.replace(temporary, self.path)
            else:
                os.link(temporary, self.path)  # fails if the file appeared meanwhile
            _fsync_directory(self.path.parent)
        finally:
            Path(temporary).unlink(missing_ok=True)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


KeySource = EnvironmentKeys | KeyFile


def key_source(settings: Settings) -> KeySource:
    """The configured keys; a missing key file is generated (first start)."""
    if settings.secrets_key is not None:
        return EnvironmentKeys.from_settings(settings)
    if settings.secrets_previous_key is not None:
        raise SecretStoreMisconfigured(
            "KEYBUZZ_SECRETS_PREVIOUS_KEY is set without KEYBUZZ_SECRETS_KEY; it only serves "
            "while rotating an environment key."
        )
    keys = KeyFile(key_file_path(settings))
    keys.create_if_missing()
    keys.current()
    return keys
