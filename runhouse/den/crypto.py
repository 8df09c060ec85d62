"""Envelope encryption of secrets' values: each version sealed with a data key of its own,
the data key wrapped by Den's master key.

    >>> keyring = Keyring(new_key())
    >>> sealed = seal(keyring, "ana/aws", 3, {"access_key": "..."})
    >>> open_sealed(keyring, "ana/aws", 3, sealed)
    {'access_key': '...'}

Both layers are AES-256-GCM (``cryptography``). The associated data of both names the
secret's path and version, so a row copied onto another secret or version fails to open
instead of answering with someone else's values. A row records the id of the master key
that wrapped its data key (a hash of the key: it reveals nothing of it), so that a Den
started with another key says so rather than failing on a tag.

Rotating the master key (``rotation.py``) unwraps each data key with the old master key and
wraps it with the new one; the ciphertexts stay as they are.

The master key is 32 random bytes, kept base64-encoded in a file of mode 600: by default
``DATA_DIR/master_key``, made at the first start, or a file the operator gives
(``--master-key-file``). Nothing here logs, and no error holds a value or a key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from runhouse.exceptions import DenServerError
from runhouse.fileio import atomic_write

KEY_BYTES = 32  # AES-256, for master keys and data keys alike
NONCE_BYTES = 12  # GCM's standard nonce
_VALUES_AD = b"runhouse secret values v1\x00"
_WRAP_AD = b"runhouse data key v1\x00"
_KEY_ID_AD = b"runhouse den master key id\x00"


@dataclass(frozen=True)
class MasterKey:
    """A master key and its id (the first 16 hex digits of a hash of it)."""

    key: bytes
    id: str

    def __repr__(self) -> str:
        return f"MasterKey(id={self.id!r})"  # never the key


@dataclass(frozen=True)
class Sealed:
    """One version's values as stored: sealed values, their nonce, the wrapped data key,
    and the id of the master key that wrapped it."""

    ciphertext: bytes
    nonce: bytes
    wrapped_key: bytes
    key_id: str


class Keyring:
    """The master key that seals, and every master key that may open (the sealing one,
    and during an unfinished rotation the new one too)."""

    def __init__(self, sealing: MasterKey, others: Iterable[MasterKey] = ()) -> None:
        self.sealing = sealing
        self.keys = {k.id: k for k in (sealing, *others)}

    def __repr__(self) -> str:
        return f"Keyring(sealing={self.sealing.id!r}, keys={sorted(self.keys)!r})"


class Undecryptable(Exception):
    """A stored row that does not open: another master key wrapped it, or it was altered.
    The message names the secret and version and what to do, never a value."""


def key_id(key: bytes) -> str:
    """The id of a master key: a hash of it, short enough for messages."""
    return hashlib.sha256(_KEY_ID_AD + key).hexdigest()[:16]


def new_key() -> MasterKey:
    """A new random master key."""
    key = AESGCM.generate_key(bit_length=KEY_BYTES * 8)
    return MasterKey(key, key_id(key))


def seal(keyring: Keyring, path: str, version: int, values: Mapping[str, str]) -> Sealed:
    """Seal ``values`` as those of ``version`` of the secret at ``path`` (``acme/ml/x``),
    with a fresh data key wrapped by the keyring's sealing key."""
    data_key = AESGCM.generate_key(bit_length=KEY_BYTES * 8)
    nonce = os.urandom(NONCE_BYTES)
    plaintext = json.dumps({"values": dict(values)}, sort_keys=True).encode()
    ciphertext = AESGCM(data_key).encrypt(nonce, plaintext, _values_ad(path, version))
    master = keyring.sealing
    return Sealed(ciphertext, nonce, _wrap(master, data_key, path, version), master.id)


def open_sealed(keyring: Keyring, path: str, version: int, sealed: Sealed) -> dict[str, str]:
    """The values sealed in ``sealed`` for ``version`` of the secret at ``path``;
    ``Undecryptable`` (saying which case) if they cannot be opened."""
    what = f"secret /{path} version {version} cannot be decrypted"
    master = keyring.keys.get(sealed.key_id)
    if master is None:
        have = ", ".join(sorted(keyring.keys))
        raise Undecryptable(
            f"{what}: it was sealed with master key {sealed.key_id}, and this Den has master "
            f"key {have}. Start Den with the master key file that sealed it "
            "(--master-key-file, or restore DATA_DIR/master_key from a backup)"
        )
    data_key = unwrap(master, sealed.wrapped_key, path, version, what)
    try:
        plaintext = AESGCM(data_key).decrypt(
            sealed.nonce, sealed.ciphertext, _values_ad(path, version)
        )
    except (InvalidTag, ValueError):
        raise Undecryptable(
            f"{what}: its ciphertext fails its integrity check, so the row was altered (or "
            "copied from another secret or version). Save the secret again to replace it"
        ) from None
    try:
        values = json.loads(plaintext)["values"]
    except (ValueError, KeyError, TypeError):
        values = None
    if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
        # Authenticated, so only a bug could get here; the text itself is never shown.
        raise Undecryptable(f"{what}: it opened, but does not hold a set of values")
    return {str(k): v for k, v in values.items()}


def unwrap(master: MasterKey, wrapped: bytes, path: str, version: int, what: str = "") -> bytes:
    """The data key of ``version`` of ``path``, unwrapped with ``master``."""
    what = what or f"secret /{path} version {version} cannot be decrypted"
    try:
        nonce, body = wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:]
        data_key = AESGCM(master.key).decrypt(nonce, body, _wrap_ad(path, version))
    except (InvalidTag, ValueError):
        data_key = b""
    if len(data_key) != KEY_BYTES:
        raise Undecryptable(
            f"{what}: the master key is not the one that sealed it (or the row was altered). "
            "Start Den with the master key file that sealed it, or save the secret again"
        )
    return data_key


def rewrap(old: MasterKey, new: MasterKey, wrapped: bytes, path: str, version: int) -> bytes:
    """A data key wrapped by ``old`` for ``version`` of ``path``, wrapped by ``new``."""
    return _wrap(new, unwrap(old, wrapped, path, version), path, version)


def _wrap(master: MasterKey, data_key: bytes, path: str, version: int) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(master.key).encrypt(nonce, data_key, _wrap_ad(path, version))


def _values_ad(path: str, version: int) -> bytes:
    return _VALUES_AD + path.encode() + b"\x00" + str(version).encode()


def _wrap_ad(path: str, version: int) -> bytes:
    return _WRAP_AD + path.encode() + b"\x00" + str(version).encode()


# -- key files ----------------------------------------------------------------------------


def pending_path(path: Path) -> Path:
    """Where a rotation keeps the new master key until every data key is re-wrapped."""
    return path.with_name(path.name + ".new")


def read_key_file(path: Path) -> MasterKey:
    """The master key in ``path``; ``DenServerError`` saying what is wrong with the file."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        raise DenServerError(f"Den's master key file {path} does not exist") from None
    except OSError as exc:
        raise DenServerError(f"cannot read Den's master key file {path}: {exc.strerror}") from None
    if mode & 0o077:
        raise DenServerError(
            f"Den's master key file {path} may be read by other users (mode {mode:o}); "
            f"make it private first: chmod 600 {path}"
        )
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise DenServerError(
            f"Den's master key file {path} does not hold a master key (the base64 of "
            f"{KEY_BYTES} bytes); restore it from a backup, or give the right file with "
            "--master-key-file"
        )
    return MasterKey(key, key_id(key))


def write_key_file(path: Path, master: MasterKey) -> None:
    """Keep ``master`` in ``path`` (mode 600 from the start, written atomically)."""
    atomic_write(path, base64.b64encode(master.key).decode() + "\n", mode=0o600)
