"""The reviewer registry on the hub: who may sign, with which key, for which roles.

Rule: the registry is the service's own file (``<state>/reviewers.json``, mode 0600, written
atomically under one lock) and nothing else decides who is a reviewer on the hub. A signed-in
user enrols only their *own* public key (it starts ``pending``); a hub admin approves a
pending key and assigns the roles, but can neither add nor change a key, nor approve their
own enrolment. A newly approved key revokes the reviewer's earlier keys of the same source
(a new browser replaces the old one; CLI keys live beside browser keys). Decisions the
service verified stay listed with the key that made them, so a later revocation does not
undo them. Every change is appended to the service's audit log with the proved actor.
"""

from __future__ import annotations

import base64
import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from idsp.errors import Refused, UserError
from idsp.files import atomic_write
from legal_ethics.canonical import sha256_hex, sha256_of
from legal_ethics.schema import ROLES

SOURCES = ("webcrypto", "cli")
STATUSES = ("pending", "active", "revoked")
MAX_FILE = 4 * 1024 * 1024  # a registry of thousands of reviewers; a bigger file is not ours


class RegistryRefused(Refused):
    """A registry change the rules do not allow (HTTP 403 or 409)."""

    def __init__(self, status: int, message: str, fix: str = ""):
        super().__init__(message, fix=fix or None)
        self.status = status


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def key_id(public_key: str) -> str:
    return "k-" + sha256_hex(base64.b64decode(public_key))[:12]


def check_public_key(public_key: Any) -> str:
    """A raw 32-byte Ed25519 public key in base64 that is a valid curve point."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if not isinstance(public_key, str):
        raise RegistryRefused(400, "`public_key` ontbreekt (base64 van de ruwe 32-byte Ed25519-sleutel)")
    try:
        raw = base64.b64decode(public_key.strip(), validate=True)
        if len(raw) != 32:
            raise ValueError
        Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise RegistryRefused(
            400, "`public_key` is geen Ed25519-publieke sleutel (32 bytes, base64)",
            fix="Stuur de ruwe publieke sleutel zoals crypto.subtle.exportKey('raw', ...) die geeft",
        ) from None
    return base64.b64encode(raw).decode()


def fingerprint(name: str, roles: list[str], public_key: str) -> str:
    """The same fingerprint as ``legal_ethics.reviewers.Reviewer.fingerprint``."""
    return sha256_of({"username": name, "roles": sorted(roles), "public_key": public_key})


class ReviewerRegistry:
    def __init__(self, path: Path, log: Any):
        self.path = path
        self.log = log  # idsp.service.auditlog.AuditLog
        self._lock = threading.Lock()

    # --- file ------------------------------------------------------------------------

    def load(self) -> dict[str, Any]:
        if not self.path.exists():
            return {"version": 1, "reviewers": {}}
        if self.path.stat().st_size > MAX_FILE:
            raise UserError("the reviewer registry is over 4 MiB", where=str(self.path))
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UserError(f"the reviewer registry cannot be read ({exc})", where=str(self.path),
                            fix="The platform admin restores it from backup") from None
        if not isinstance(data, dict) or not isinstance(data.get("reviewers"), dict):
            raise UserError("the reviewer registry has no `reviewers` map", where=str(self.path))
        return data

    def _save(self, data: dict[str, Any]) -> None:
        atomic_write(self.path, json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n", mode=0o600)

    # --- changes ---------------------------------------------------------------------

    def enrol(self, name: str, public_key: Any, source: Any) -> dict[str, Any]:
        """``name`` (the proved user) enrols their own key; it waits for an admin."""
        if source not in SOURCES:
            raise RegistryRefused(400, f"`source` moet een van {', '.join(SOURCES)} zijn, niet {source!r}")
        public_key = check_public_key(public_key)
        kid = key_id(public_key)
        with self._lock:
            data = self.load()
            for other, entry in data["reviewers"].items():
                for k in entry["keys"]:
                    if k["public_key"] == public_key and (other != name or k["status"] == "revoked"):
                        raise RegistryRefused(
                            409, "deze sleutel is al eerder aangemeld; elke aanmelding heeft een nieuwe sleutel nodig",
                            fix="Maak een nieuwe sleutel op de aanmeldpagina",
                        )
            entry = data["reviewers"].setdefault(name, {"roles": [], "keys": []})
            same = next((k for k in entry["keys"] if k["public_key"] == public_key), None)
            if same is not None:
                return self._public(name, entry)
            at = _now()
            for k in entry["keys"]:  # an earlier enrolment that nobody approved is replaced
                if k["status"] == "pending" and k["source"] == source:
                    k.update(status="revoked", revoked_at=at, revoked_by=name,
                             revoked_because="vervangen door een nieuwe aanmelding")
            entry["keys"].append({"key_id": kid, "public_key": public_key, "source": source,
                                  "status": "pending", "enrolled_at": at, "enrolled_by": name, "decisions": []})
            self._save(data)
            self.log.append("reviewer.enrolled", actor=name, case_id=None,
                            data={"username": name, "key_id": kid, "source": source, "public_key": public_key})
            return self._public(name, entry)

    def approve(self, admin: str, name: str, roles: Any, key: str | None = None) -> dict[str, Any]:
        """A hub admin activates ``name``'s pending key with ``roles``."""
        if admin == name:
            raise RegistryRefused(
                403, "een beheerder keurt zijn eigen aanmelding als beoordelaar niet goed (vier-ogen)",
                fix="Een andere beheerder keurt deze aanmelding goed",
            )
        if not isinstance(roles, list) or not roles or not all(isinstance(r, str) for r in roles):
            raise RegistryRefused(400, "`roles` moet een niet-lege lijst van rollen zijn",
                                  fix=f"Kies uit: {', '.join(ROLES)}")
        unknown = [r for r in roles if r not in ROLES]
        if unknown:
            raise RegistryRefused(400, f"onbekende rol(len): {', '.join(unknown)}", fix=f"Kies uit: {', '.join(ROLES)}")
        roles = sorted(set(roles))
        with self._lock:
            data = self.load()
            entry = data["reviewers"].get(name)
            pending = [k for k in (entry or {}).get("keys", []) if k["status"] == "pending"
                       and (key is None or k["key_id"] == key)]
            if not pending:
                raise RegistryRefused(
                    409, f"{name} heeft geen sleutel die op goedkeuring wacht",
                    fix=f"{name} meldt zich eerst aan op /services/idsp/review/enrol",
                )
            chosen, at = pending[-1], _now()
            assert entry is not None
            for k in entry["keys"]:
                if k is not chosen and k["status"] != "revoked" and k["source"] == chosen["source"]:
                    k.update(status="revoked", revoked_at=at, revoked_by=admin,
                             revoked_because=f"vervangen door sleutel {chosen['key_id']}")
            chosen.update(status="active", approved_at=at, approved_by=admin)
            entry["roles"] = roles
            self._save(data)
            self.log.append("reviewer.registered", actor=admin, case_id=None, data={
                "username": name, "roles": roles, "key_id": chosen["key_id"],
                "public_key": chosen["public_key"], "source": chosen["source"],
                "fingerprint": fingerprint(name, roles, chosen["public_key"])})
            return self._public(name, entry)

    def revoke(self, actor: str, name: str, kid: str, *, admin: bool, because: str = "") -> dict[str, Any]:
        """The reviewer or an admin revokes a key; decisions it made stay as recorded."""
        if actor != name and not admin:
            raise RegistryRefused(403, "alleen de beoordelaar zelf of een beheerder trekt een sleutel in")
        with self._lock:
            data = self.load()
            entry = data["reviewers"].get(name)
            k = next((k for k in (entry or {}).get("keys", []) if k["key_id"] == kid), None)
            if entry is None or k is None:
                raise RegistryRefused(409, f"{name} heeft geen sleutel {kid}")
            if k["status"] != "revoked":
                k.update(status="revoked", revoked_at=_now(), revoked_by=actor, revoked_because=because)
                self._save(data)
                self.log.append("reviewer.removed" if not self.active_keys(entry) else "reviewer.key_revoked",
                                actor=actor, case_id=None, data={"username": name, "key_id": kid})
            return self._public(name, entry)

    def note_decision(self, name: str, kid: str, decision_id: str) -> None:
        """Remember that ``kid`` made ``decision_id`` (verified now): it counts after a revocation."""
        with self._lock:
            data = self.load()
            for k in data["reviewers"].get(name, {}).get("keys", []):
                if k["key_id"] == kid and decision_id not in k.setdefault("decisions", []):
                    k["decisions"].append(decision_id)
            self._save(data)

    # --- reading ---------------------------------------------------------------------

    @staticmethod
    def active_keys(entry: dict[str, Any]) -> list[dict[str, Any]]:
        return [k for k in entry.get("keys", []) if k["status"] == "active"]

    def entry(self, name: str) -> dict[str, Any] | None:
        entry = self.load()["reviewers"].get(name)
        return self._public(name, entry) if entry else None

    def all(self) -> list[dict[str, Any]]:
        return [self._public(n, e) for n, e in sorted(self.load()["reviewers"].items())]

    def active_key(self, name: str, public_key: str) -> dict[str, Any] | None:
        entry = self.load()["reviewers"].get(name) or {}
        return next((k for k in self.active_keys(entry) if k["public_key"] == public_key), None)

    def roles_of(self, name: str) -> list[str]:
        entry = self.load()["reviewers"].get(name) or {}
        return list(entry.get("roles", [])) if self.active_keys(entry) else []

    def trust(self) -> dict[str, Any]:
        """What the gate needs: per reviewer the roles, the active keys, and the revoked
        keys only with the decisions the service verified while they were active."""
        out = []
        for name, entry in sorted(self.load()["reviewers"].items()):
            keys = []
            for k in entry["keys"]:
                if k["status"] == "active" or (k["status"] == "revoked" and k.get("decisions")):
                    keys.append({f: k.get(f) for f in ("key_id", "public_key", "source", "status",
                                                       "approved_at", "revoked_at", "decisions")})
            if keys and entry.get("roles"):
                out.append({"username": name, "roles": entry["roles"], "keys": keys})
        return {"reviewers": out}

    @staticmethod
    def _public(name: str, entry: dict[str, Any]) -> dict[str, Any]:
        return {"username": name, "roles": list(entry.get("roles", [])),
                "keys": [{f: v for f, v in k.items() if f != "decisions"} for k in entry.get("keys", [])]}
