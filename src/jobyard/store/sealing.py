"""SecretBox: the server key, sealing secrets at rest and keying fingerprints.

The key is 32 random bytes in a 0600 file: ``DATA/server.key``, created on the first start,
or the file config ``jobyard.secretKeyFile`` names (e.g. on another disk, so that a copy of
the data directory alone opens nothing). A file readable by anyone else, or of the wrong
size, is refused at start.

Sealed values are AES-256-GCM with a random 96-bit nonce, bound to their context (e.g. the
job id and variable name) as associated data: a sealed value copied to another job's row
does not open there. Fingerprints (of idempotent requests) are HMAC-SHA256 under a key
derived from the same file, so that a stored fingerprint does not let anyone test guesses
of the secret values a request carried.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import sqlite3
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from jobyard.domain.errors import InvalidArgument

log = logging.getLogger("jobyard.store")

KEY_BYTES = 32
NONCE_BYTES = 12
KEY_FILE_NAME = "server.key"
SEALED_PREFIX = "jy1:"  # marks a sealed value (and its format version)


class SecretBox:
    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"a server key has {KEY_BYTES} bytes, not {len(key)}")
        self._aead = AESGCM(_derive(key, b"jobyard seal v1"))
        self._mac_key = _derive(key, b"jobyard fingerprint v1")

    @classmethod
    def ephemeral(cls) -> SecretBox:
        """A box with a key that lives only in memory (unit tests, tools)."""
        return cls(os.urandom(KEY_BYTES))

    @classmethod
    def from_file(cls, path: Path) -> SecretBox:
        """The box of the key in ``path``, creating the file (0600) if it does not exist."""
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return cls(_read_key(path))
        with os.fdopen(fd, "wb") as out:
            out.write(os.urandom(KEY_BYTES))
            out.flush()
            os.fsync(out.fileno())
        return cls(_read_key(path))

    def seal(self, plaintext: str, context: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return SEALED_PREFIX + base64.b64encode(nonce + sealed).decode()

    def open(self, sealed: str, context: str) -> str:
        """The plaintext of a :meth:`seal` result; ValueError if it was not sealed with this
        key and context."""
        if not sealed.startswith(SEALED_PREFIX):
            raise ValueError("not a sealed value")
        try:
            raw = base64.b64decode(sealed[len(SEALED_PREFIX) :], validate=True)
            plain = self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode())
        except (InvalidTag, ValueError) as exc:
            raise ValueError("sealed with another key or for another context") from exc
        return plain.decode()

    def fingerprint(self, data: bytes) -> str:
        return hmac.new(self._mac_key, data, hashlib.sha256).hexdigest()


def is_sealed(value: str) -> bool:
    return value.startswith(SEALED_PREFIX)


# The secret_environment column: a JSON object of variable names to sealed values while the
# job may still need them, to "" once it ended (names are kept: the API shows them masked).
ERASED_SECRETS_SQL = "(SELECT json_group_object(key, '') FROM json_each(secret_environment))"


def sealed_secrets(box: SecretBox, job_id: str, secrets: Mapping[str, str]) -> str:
    """The column value of ``secrets``: every value sealed, bound to the job and its name."""
    return json.dumps({k: box.seal(v, f"{job_id}/{k}") for k, v in secrets.items()})


def opened_secrets(box: SecretBox, job_id: str, column: str) -> dict[str, str]:
    """The secrets of a column value ("" for erased ones and ones this key cannot open)."""
    out = {}
    for name, value in json.loads(column).items():
        if value and is_sealed(value):
            try:
                value = box.open(value, f"{job_id}/{name}")
            except ValueError:
                log.error("secret %s of job %s does not open with this server key", name, job_id)
                value = ""
        out[name] = value  # "" (erased), or plaintext a store before 0007 wrote
    return out


def seal_plaintext(db: sqlite3.Connection, box: SecretBox, terminal: Iterable[str]) -> int:
    """Seal secret values left in plaintext by an earlier version (erasing those of ended
    jobs), then checkpoint and truncate the WAL so that no copy of them stays there. Returns
    how many jobs had plaintext."""
    ended = set(terminal)
    # Found by SQLite itself: a start reads only the rows that hold plaintext, however many
    # ended jobs keep their (erased) names.
    rows = db.execute(
        "SELECT id, status, secret_environment FROM jobs WHERE EXISTS (SELECT 1 FROM"
        " json_each(secret_environment) WHERE value != '' AND substr(value, 1, ?) != ?)",
        (len(SEALED_PREFIX), SEALED_PREFIX),
    ).fetchall()
    fixed = 0
    for job_id, status, column in rows:
        values = json.loads(column)
        if all(not v or is_sealed(v) for v in values.values()):
            continue
        if status in ended:
            new = json.dumps(dict.fromkeys(values, ""))
        else:
            new = json.dumps({
                k: v if not v or is_sealed(v) else box.seal(v, f"{job_id}/{k}")
                for k, v in values.items()
            })  # fmt: skip
        db.execute("UPDATE jobs SET secret_environment = ? WHERE id = ?", (new, job_id))
        fixed += 1
    if fixed:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return fixed


def _derive(key: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=purpose).derive(key)


def _read_key(path: Path) -> bytes:
    st = path.stat()
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InvalidArgument(
            f"server key {path} is open to others (mode {stat.S_IMODE(st.st_mode):04o}): "
            f"chmod 600 it"
        )
    key = path.read_bytes()
    if len(key) != KEY_BYTES:
        raise InvalidArgument(f"server key {path} has {len(key)} bytes, not {KEY_BYTES}")
    return key


__all__ = [
    "ERASED_SECRETS_SQL",
    "KEY_FILE_NAME",
    "SecretBox",
    "is_sealed",
    "opened_secrets",
    "seal_plaintext",
    "sealed_secrets",
]
