"""Who may sign: the platform-owned reviewer registry, reviewers' key files, the current user.

Rule: trust comes only from the registry at ``cfg.path("reviewers")`` — outside every case
folder — and only for entries that were added through ``register`` (which writes a
``reviewer.registered`` audit entry with the entry's fingerprint). An entry edited by hand
(new role, swapped key) no longer matches its audit fingerprint and its signatures do not
count. A registry file that group or others can write is refused outright. Private keys
never enter the registry: each reviewer keeps an Ed25519 key file with mode 0600.

The current user, on the hub (a user server), is the hub user name the platform service
proves for the server's own token (``GET api/whoami``, asked once per process):
``$IDSP_USER``, ``LOGNAME`` and the OS account (``idsp-anouk``) decide nothing there, and
without the service nothing is recorded. Off the hub it is ``$IDSP_USER`` if set, else the
operating-system login (``getpass.getuser()``): that mode trusts its one user. Answers
record this name; approvals are proven by the key and the name together.
"""

from __future__ import annotations

import base64
import getpass
import os
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from idsp.errors import Refused, UserError
from idsp.files import atomic_write
from pydantic import Field, field_validator

from legal_ethics.canonical import sha256_of
from legal_ethics.schema import ROLES, _Frozen, _role
from legal_ethics.storage import dump_yaml, locked, read_model

if TYPE_CHECKING:  # pragma: no cover
    from idsp.config import PlatformConfig

KEY_ENV = "IDSP_KEY_FILE"
USER_ENV = "IDSP_USER"


class RegistryError(UserError):
    """The reviewer registry is missing, unsafe or invalid."""


_said: set[tuple[str, str]] = set()


def current_user() -> str:
    from idsp.service import link

    if not link.on_hub():
        return os.environ.get(USER_ENV) or getpass.getuser()
    name = link.proved_user()
    declared = os.environ.get(USER_ENV)
    if declared and declared != name and (declared, name) not in _said:
        _said.add((declared, name))  # once per process: every step asks
        print(f"note: ${USER_ENV}={declared} is ignored on the hub; you are {name}, as the hub proved",
              file=sys.stderr)
    return name


def acting_user(actor: str | None = None) -> str:
    """Who performs a step: on the hub always the proved user, and another name is refused
    before anything is written; off the hub ``actor`` or the current user."""
    from idsp.service import link

    if not link.on_hub():
        return actor or current_user()
    me = current_user()
    if actor and actor != me:
        raise Refused(
            f"on the hub you act as {me!r}, as the hub proved, not as {actor!r}",
            fix="Leave the actor out: the platform records the signed-in user",
        )
    return me


def default_key_path() -> Path:
    if os.environ.get(KEY_ENV):
        return Path(os.environ[KEY_ENV]).expanduser()
    return Path.home() / ".idsp-keys" / "ed25519.pem"


class Reviewer(_Frozen):
    username: str
    name: str = ""
    roles: tuple[str, ...]
    public_key: str = Field(description="base64 of the raw 32-byte Ed25519 public key")
    added: datetime | None = None
    added_by: str | None = None

    @field_validator("roles")
    @classmethod
    def _roles(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("at least one role")
        return tuple(_role(x) for x in v)

    @field_validator("public_key")
    @classmethod
    def _key(cls, v: str) -> str:
        try:
            raw = base64.b64decode(v, validate=True)
        except ValueError:
            raise ValueError("not base64") from None
        if len(raw) != 32:
            raise ValueError("an Ed25519 public key is 32 bytes (44 base64 characters)")
        return v

    @property
    def fingerprint(self) -> str:
        """What the audit log vouches for: username, roles and key (not name or dates)."""
        return sha256_of(
            {"username": self.username, "roles": sorted(self.roles), "public_key": self.public_key}
        )


class Registry(_Frozen):
    reviewers: tuple[Reviewer, ...] = ()

    def by_key(self, public_key: str) -> Reviewer | None:
        return next((r for r in self.reviewers if r.public_key == public_key), None)

    def by_username(self, username: str) -> Reviewer | None:
        return next((r for r in self.reviewers if r.username == username), None)

    def with_role(self, role: str) -> list[str]:
        return sorted({r.username for r in self.reviewers if role in r.roles})


def _config(config: PlatformConfig | None = None):
    if config is not None:
        return config
    from idsp.config import load_config

    return load_config()


def registry_path(config: PlatformConfig | None = None) -> Path:
    return _config(config).path("reviewers")


def _hub_answer(config: PlatformConfig | None) -> dict[str, Any] | None:
    """The hub registry's answer: in the platform service's own process from its file (its
    config carries ``trust_answer``), in a user server from the service; None off the hub."""
    source: Callable[[], dict[str, Any]] | None = getattr(config, "trust_answer", None)
    if source is not None:
        return source()
    from idsp.service import link

    return link.hub_service().reviewer_registry() if link.on_hub() else None


def with_service_decisions(review: Any, case_id: str, config: PlatformConfig | None = None) -> Any:
    """On the hub, ``review`` (a ``ReviewRecord``) plus the decisions the platform service
    recorded for the case (its own copy: it may not be able to write the case folder).
    They count only as ``approvals.check`` allows, like every decision; off the hub
    ``review`` as is."""
    source: Callable[[str], list[dict[str, Any]]] | None = getattr(config, "decisions_for", None)
    if source is not None:
        extra = source(case_id)
    else:
        from idsp.service import link

        if not link.on_hub():
            return review
        extra = link.hub_service().case_decisions(case_id)
    from legal_ethics.schema import SignedDecision

    known = {d.id for d in review.decisions}
    more = [SignedDecision.model_validate(d) for d in extra if d.get("id") not in known]
    return review.model_copy(update={"decisions": (*review.decisions, *more)}) if more else review


def hub_trust(answer: dict[str, Any]) -> tuple[Registry, dict[str, str]]:
    """On the hub: the registry and what vouches for it, from the platform service only.

    One ``Reviewer`` per usable key. ``vouched`` is keyed by public key for active keys and by
    decision id for a revoked key's decisions that the service verified while it was active
    (see ``approvals.check``); files in the user's home and ``IDSP_*`` decide nothing here."""
    reviewers, vouched = [], {}
    for entry in answer.get("reviewers", []):
        for key in entry.get("keys", []):
            r = Reviewer(username=entry["username"], roles=tuple(entry["roles"]), public_key=key["public_key"],
                         added_by="service:idsp")
            reviewers.append(r)
            if key.get("status") == "active":
                vouched[r.public_key] = r.fingerprint
            for decision in key.get("decisions") or []:
                vouched[decision] = r.fingerprint
    return Registry(reviewers=tuple(reviewers)), vouched


def load_registry(config: PlatformConfig | None = None) -> Registry:
    """Read the registry; an absent file is an empty registry, an unsafe one an error.
    On the hub the platform service's registry is the registry (``hub_trust``)."""
    answer = _hub_answer(config)
    if answer is not None:
        return hub_trust(answer)[0]
    path = registry_path(config)
    if not path.exists():
        return Registry()
    mode = path.stat().st_mode
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise RegistryError(
            f"the reviewer registry is writable by group or others (mode {oct(mode & 0o777)}), "
            "so nobody can trust it",
            where=str(path),
            fix=f"Run `chmod 644 {path}` as the platform admin",
        )
    return read_model(Registry, path, what="reviewer registry", fix="Fix the registry file")


def _save(registry: Registry, config: PlatformConfig | None = None) -> None:
    data = {"reviewers": [r.model_dump(mode="json", exclude_none=True) for r in registry.reviewers]}
    atomic_write(registry_path(config), "# IDSP reviewer registry: managed by `idsp ethics reviewer`\n" + dump_yaml(data), mode=0o644)


def register(
    username: str, roles: list[str], public_key: str, *, name: str = "", config: PlatformConfig | None = None,
    actor: str | None = None,
) -> Reviewer:
    """Add or replace a reviewer and vouch for the entry in the audit log."""
    from legal_ethics import audit

    cfg = _config(config)
    actor = actor or current_user()
    reviewer = Reviewer(
        username=username, name=name, roles=tuple(roles), public_key=public_key.strip(),
        added=datetime.now(UTC).replace(microsecond=0), added_by=actor,
    )
    path = registry_path(cfg)
    with locked(path.with_name(path.name + ".lock")):
        current = load_registry(cfg)
        others = [r for r in current.reviewers if r.username != username]
        clash = next((r for r in others if r.public_key == reviewer.public_key), None)
        if clash:
            raise RegistryError(
                f"this public key already belongs to reviewer {clash.username!r}",
                where=str(path), fix="Every reviewer needs their own key: run `idsp ethics keygen`",
            )
        _save(Registry(reviewers=tuple(sorted([*others, reviewer], key=lambda r: r.username))), cfg)
        audit.append(
            "reviewer.registered", actor=actor, config=cfg, username=username,
            roles=sorted(reviewer.roles), public_key=reviewer.public_key,
            fingerprint=reviewer.fingerprint,
        )
    return reviewer


def unregister(username: str, *, config: PlatformConfig | None = None, actor: str | None = None) -> None:
    from legal_ethics import audit

    cfg = _config(config)
    path = registry_path(cfg)
    with locked(path.with_name(path.name + ".lock")):
        current = load_registry(cfg)
        if current.by_username(username) is None:
            raise RegistryError(f"no reviewer {username!r} in the registry", where=str(path))
        _save(Registry(reviewers=tuple(r for r in current.reviewers if r.username != username)), cfg)
        audit.append("reviewer.removed", actor=actor or current_user(), config=cfg, username=username)


def vouched_fingerprints(config: PlatformConfig | None = None, entries=None) -> dict[str, str]:
    """username -> fingerprint the audit log last vouched for (removed users are absent).
    On the hub the platform service vouches (``hub_trust``), never the local log."""
    from legal_ethics import audit

    answer = _hub_answer(config)
    if answer is not None:
        return hub_trust(answer)[1]
    vouched: dict[str, str] = {}
    for entry in entries if entries is not None else audit.entries(config=config):
        data = entry.get("data", {})
        if entry.get("event") == "reviewer.registered":
            vouched[data.get("username")] = data.get("fingerprint")
        elif entry.get("event") == "reviewer.removed":
            vouched.pop(data.get("username"), None)
    return vouched


# --- key files -----------------------------------------------------------------------


@dataclass(frozen=True)
class KeyPair:
    path: Path
    public_key: str  # base64 raw

    def sign(self, message: bytes) -> str:
        return base64.b64encode(_load_private(self.path).sign(message)).decode()


def public_key_b64(private_key) -> str:
    from cryptography.hazmat.primitives import serialization

    raw = private_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return base64.b64encode(raw).decode()


def keygen(path: Path | None = None, *, force: bool = False) -> KeyPair:
    """Make a new Ed25519 key pair; the private key file gets mode 0600."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = Path(path or default_key_path()).expanduser()
    if path.exists() and not force:
        raise UserError(
            "a key file already exists here; a new key would make your registered key useless",
            where=str(path), fix="Use it, or pass --force and have the admin register the new public key",
        )
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    atomic_write(path, pem, mode=0o600)
    return KeyPair(path=path, public_key=public_key_b64(key))


def _load_private(path: Path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(
            "no reviewer key file here", where=str(path),
            fix="Pass --key PATH, set IDSP_KEY_FILE, or make one with `idsp ethics keygen`",
        )
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise UserError(
            f"the key file is readable or writable by others (mode {oct(mode)})",
            where=str(path), fix=f"Run `chmod 600 {path}`; if others could read it, make a new key",
        )
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise UserError(f"not an unencrypted PEM private key ({exc})", where=str(path)) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise UserError("the key file does not hold an Ed25519 key", where=str(path))
    return key


def load_key(path: Path | None = None) -> KeyPair:
    path = Path(path or default_key_path()).expanduser()
    return KeyPair(path=path, public_key=public_key_b64(_load_private(path)))


def verify_signature(public_key: str, signature: str, message: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        pub = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key, validate=True))
        pub.verify(base64.b64decode(signature, validate=True), message)
    except (InvalidSignature, ValueError):
        return False
    return True


def role_label(role: str) -> str:
    return ROLES.get(role, role)
