"""The pseudonymisation key store: one secret key per pseudonymisation domain.

Rule: keys live outside every case repository, in files of mode 0600 inside a folder of
mode 0700; a key file that others can read is refused, never "fixed" silently. Only the
key id (a fingerprint) ever leaves this module's callers: never log or store the key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from idsp.errors import KeyStoreError

DOMAIN_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
KEY_BYTES = 32


@dataclass(frozen=True, repr=False)
class DomainKey:
    domain: str
    key_id: str
    created: str
    secret: bytes

    def __repr__(self) -> str:  # never show the secret, not even in a traceback
        return f"DomainKey(domain={self.domain!r}, key_id={self.key_id!r})"


def key_id_for(domain: str, secret: bytes) -> str:
    return f"{domain}:{hashlib.sha256(b'idsp-key-id:' + secret).hexdigest()[:16]}"


def _check_domain(domain: str) -> None:
    if not DOMAIN_RE.match(domain or ""):
        raise KeyStoreError(
            f"{domain!r} is not a valid pseudonymisation domain name",
            fix="Use lower-case letters, digits, '-' or '_', starting with a letter (e.g. 'bsn-nvwa')",
        )


class KeyStore:
    """A folder of domain keys (``<domain>.key``, JSON)."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder).expanduser()

    @classmethod
    def from_config(cls, config=None) -> KeyStore:
        from idsp.config import load_config

        return cls((config or load_config()).path("keys_dir"))

    def path(self, domain: str) -> Path:
        _check_domain(domain)
        return self.folder / f"{domain}.key"

    def _check_outside_repository(self) -> None:
        folder = self.folder.resolve()
        for parent in (folder, *folder.parents):
            if (parent / "case.yaml").is_file() or (parent / ".git").exists():
                raise KeyStoreError(
                    "the key store lies inside a repository or case project "
                    f"({parent}), where keys could be committed",
                    where=str(folder),
                    fix="Set paths.keys_dir in platform.yaml (or IDSP_PATHS__KEYS_DIR) to a "
                    "folder outside any repository",
                )

    def generate(self, domain: str) -> DomainKey:
        """Create the key of a new domain; refuses to replace an existing one."""
        target = self.path(domain)
        self._check_outside_repository()
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.folder, 0o700)
        if target.exists():
            raise KeyStoreError(
                f"domain {domain!r} already has a key; replacing it would break the link "
                "between old and new pseudonyms",
                where=str(target),
                fix="Choose another domain name, or move the old key away deliberately",
            )
        secret = secrets.token_bytes(KEY_BYTES)
        key = DomainKey(domain, key_id_for(domain, secret), _now(), secret)
        body = json.dumps(
            {
                "domain": domain,
                "key_id": key.key_id,
                "created": key.created,
                "algorithm": "HMAC-SHA256",
                "key": base64.b64encode(secret).decode(),
            },
            indent=2,
        )
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(body)
                fh.flush()
                os.fsync(fh.fileno())
            os.link(tmp, target)  # fails if a key appeared meanwhile: never overwrite
        finally:
            tmp.unlink(missing_ok=True)
        return key

    def load(self, domain: str) -> DomainKey:
        target = self.path(domain)
        if not target.is_file():
            raise KeyStoreError(
                f"no key for pseudonymisation domain {domain!r}",
                where=str(target),
                fix=f"Create it once with `idsp data keygen {domain}`",
            )
        self.check_mode(target)
        try:
            data = json.loads(target.read_text(encoding="utf-8"))
            secret = base64.b64decode(data["key"], validate=True)
        except (ValueError, KeyError) as exc:
            raise KeyStoreError(
                f"the key file is damaged ({exc.__class__.__name__})", where=str(target),
                fix="Restore it from the platform's backup of the key store",
            ) from None
        if len(secret) < KEY_BYTES or data.get("domain") != domain:
            raise KeyStoreError("the key file does not hold a valid key for this domain", where=str(target))
        return DomainKey(domain, key_id_for(domain, secret), data.get("created", ""), secret)

    @staticmethod
    def check_mode(target: Path) -> None:
        mode = stat.S_IMODE(target.stat().st_mode)
        if mode & 0o077:
            raise KeyStoreError(
                f"the key file can be read or written by others (mode {mode:04o})",
                where=str(target),
                fix=f"Run `chmod 600 {target}` and check who may have copied it",
            )

    def domains(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        return sorted(p.stem for p in self.folder.glob("*.key"))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
