"""Compare our catalogue with a checkout of the official machine-readable sources.

Rule: this module reads an official checkout (MinBZK task-registry: ``requirements/*.yaml``,
``measures/*.yaml`` and ``instruments/iama.yaml``; MinBZK par-dpia-form: ``sources/iama.yaml`` and ``dpia.yaml``) and
reports ids added, removed and retitled relative to our catalogue; it never writes the
catalogue and never copies official text. Retitling is detected by comparing the sha256 of
the official title with the one recorded at our pinned commit.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from idsp.errors import UserError
from idsp.files import load_yaml

from legal_ethics import catalogue


def _name_sha(text: str) -> str:
    return hashlib.sha256(str(text).strip().encode()).hexdigest()


@dataclass
class InstrumentDiff:
    catalogue: str
    upstream_count: int = 0
    ours_count: int = 0
    version_upstream: str | None = None
    version_ours: str | None = None
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    retitled: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.retitled or self.version_upstream != self.version_ours)

    def as_dict(self) -> dict[str, Any]:
        return {
            "catalogue": self.catalogue, "upstream": self.upstream_count, "ours": self.ours_count,
            "version_upstream": self.version_upstream, "version_ours": self.version_ours,
            "added": self.added, "removed": self.removed, "retitled": self.retitled, "changed": self.changed,
        }


def iama_questions(tasks: list[dict]) -> list[dict]:
    """Question-level tasks of a par-dpia-form instrument.

    A task is a question if its id is official (``is_official_id`` not false) and it is
    either a leaf, or a group whose descendants are all non-official answer fields (e.g.
    IAMA 1.4.1 with its fields A/B/C). Introductions (ids starting with 0) are skipped.
    """
    out: list[dict] = []

    def descendants(t: dict):
        for k in t.get("tasks") or []:
            yield k
            yield from descendants(k)

    def walk(ts: list[dict]) -> None:
        for t in ts:
            kids = t.get("tasks") or []
            if t.get("is_official_id") is not False:
                types = set(t.get("type") or [])
                leaf = not types & {"task_group", "informational"} and not kids
                if leaf or (kids and all(k.get("is_official_id") is False for k in descendants(t))):
                    if not str(t.get("id", "")).startswith("0"):
                        out.append(t)
                    continue
            walk(kids)

    walk(tasks)
    return out


def _load(path: Path) -> Any:
    return load_yaml(path, what="upstream catalogue file", kind="catalogue")


def read_upstream(folder: Path) -> dict[str, dict[str, Any]]:
    """official catalogue id -> {version, titles: {official id: sha256(title)}}."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError("not a folder", where=str(folder), fix="Give a checkout of MinBZK/task-registry or MinBZK/par-dpia-form")
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.rglob("*.yaml")):
        if any(part.startswith(".") for part in path.relative_to(folder).parts):
            continue
        data = _load(path)
        if not isinstance(data, dict) or not isinstance(data.get("urn"), str):
            continue
        urn = data["urn"]
        if urn.startswith("urn:nl:ak:ver:"):
            found.setdefault("ak-vereisten", {"version": None, "titles": {}})["titles"][urn] = _name_sha(data.get("name", ""))
        elif urn.startswith("urn:nl:ak:mtr:"):
            found.setdefault("ak-maatregelen", {"version": None, "titles": {}})["titles"][urn] = _name_sha(data.get("name", ""))
        elif urn.startswith("urn:nl:aivt:tr:iama:") and isinstance(data.get("tasks"), list):
            titles = {t["urn"]: _name_sha(t.get("question", "")) for t in data["tasks"] if t.get("urn")}
            found["iama-1.0"] = {"version": urn.rsplit(":", 1)[1], "titles": titles}
        elif urn == "urn:nl:iama" and isinstance(data.get("tasks"), list):
            version = str(data.get("version", ""))
            titles = {f"urn:nl:iama:{version}:{t['id']}": _name_sha(t.get("task", "")) for t in iama_questions(data["tasks"])}
            found["iama-2.0"] = {"version": version, "titles": titles}
        elif urn == "urn:nl:dpia" and isinstance(data.get("tasks"), list):
            version = str(data.get("version", ""))
            titles = {
                f"urn:nl:dpia:{version}:{t['id']}": _name_sha(t.get("task", ""))
                for t in data["tasks"] if str(t.get("id")) != "0"
            }
            found["dpia-3.0"] = {"version": version, "titles": titles}
    if not found:
        raise UserError(
            "no official catalogue files found here (task-registry requirements/measures, par-dpia-form iama.yaml/dpia.yaml)",
            where=str(folder), fix="Point to the root of an official checkout",
        )
    return found


def _strip_version(urn: str) -> str:
    # urn:nl:iama:2.0:1.3.1 -> urn:nl:iama:1.3.1, so a new version is compared id by id.
    parts = urn.split(":")
    if len(parts) >= 5 and parts[2] in ("iama", "dpia"):
        return ":".join(parts[:3] + parts[4:])
    return urn


def diff(folder: Path) -> list[InstrumentDiff]:
    upstream = read_upstream(folder)
    out = []
    for cat_id, up in upstream.items():
        cat = catalogue.catalogue(cat_id)
        ours = {i.official_id: i for i in cat.items if i.official_id}
        pinned = set(cat.upstream_ids) or set(ours)
        up_titles = {_strip_version(k): v for k, v in up["titles"].items()}
        ours_n = {_strip_version(k): v for k, v in ours.items()}
        pinned_n = {_strip_version(k) for k in pinned}
        d = InstrumentDiff(
            catalogue=cat_id, upstream_count=len(up_titles), ours_count=len(ours_n),
            version_upstream=up["version"], version_ours=cat.version if up["version"] is not None else None,
        )
        d.added = sorted(set(up_titles) - pinned_n)
        d.removed = sorted(k for k in pinned_n if k not in up_titles and (k in ours_n or cat.upstream_ids))
        d.retitled = sorted(
            k for k, item in ours_n.items()
            if k in up_titles and item.upstream_name_sha256 and item.upstream_name_sha256 != up_titles[k]
        )
        out.append(d)
    return out
