"""What the start page shows: per case its checklist status in Dutch, and what awaits the
signed-in user.

Rule: the status is ``legal_ethics.state.evaluate`` over the case's own files, with the
service's trust (its audit log and reviewer registry, handed in as ``config``), never a
status field from a file; this module only reads. Each case's result is cached until the
size or mtime of its ``case.yaml`` or checklist files changes, or, for a submitted
checklist (the only kind judged with trust), the registry's files or the audit log's
entries for that case or for no case change, or one of its approvals expires: the page
stays fast while others work, and judges again exactly what changed. A case folder the
service cannot read gives "status nu niet leesbaar", never an error page.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from idsp.case_file import CASE_FILE, CaseFile, parse_case_file
from idsp.errors import IdspError
from idsp.files import atomic_write, read_limited
from legal_ethics import audit, checklist, state
from legal_ethics.reviewers import role_label

ETHICS_FILES = (checklist.CHECKLIST_FILE, checklist.ANSWERS_FILE, checklist.REVIEW_FILE)
WATCHED = (CASE_FILE, *(f"{checklist.ETHICS_DIR}/{name}" for name in ETHICS_FILES))
MAX_OPEN_SHOWN = 5  # open questions listed by title; the rest are counted

NO_TRUST = "De platformdienst heeft zijn beoordelaarsregister nu niet geladen; de status volgt zodra dat wel zo is."
INVALID = ("Een bestand van deze zaak (case.yaml of de checklist) is niet in orde, dus de status is niet "
           "vast te stellen; de projectleider herstelt het bestand.")
UNREADABLE = ("De platformdienst kan deze zaakmap nu niet lezen; de status verschijnt zodra de dienst "
              "leesrechten heeft. Blijft dit zo, meld het dan aan de beheerder.")
PURPOSE_NL = {"development": "ontwikkeling", "use": "gebruik"}
TYPE_NL = {"generic": "algemeen", "ce_markering": "CE-markering"}
# status key -> (label, css modifier). The label always says the status; colour only helps.
LABELS = {
    "none": ("geen checklist", "concept"),
    "draft": ("concept", "concept"),
    "in_review": ("ingediend", "ingediend"),
    "approved:development": ("goedgekeurd voor ontwikkeling", "ontwikkeling"),
    "approved:use": ("goedgekeurd voor gebruik", "gebruik"),
    "rejected": ("afgewezen", "afgewezen"),
    "revoked": ("goedkeuring ingetrokken", "afgewezen"),
    "expired": ("goedkeuring verlopen", "concept"),
    "unreadable": ("status nu niet leesbaar", "onbekend"),
}


@dataclass(frozen=True)
class CaseStatus:
    """A case's checklist as the start page shows it; the same for every viewer."""

    key: str  # one of LABELS
    purpose: str | None = None  # of the latest submission or of the approvals that count
    points: tuple[str, ...] = ()  # open points in Dutch: what is missing, who rejected and why
    details: tuple[str, ...] = ()  # the gate's own reasons (English, from legal_ethics)
    open_items: tuple[str, ...] = ()  # titles of unanswered questions (the first few)
    open_count: int = 0
    item_count: int = 0
    waiting_roles: tuple[str, ...] = ()  # sign-off roles still to sign (in review)
    signed: tuple[str, ...] = ()  # "Jurist: anouk"
    submitted_at: str = ""
    involved: frozenset[str] = frozenset()  # who answered or submitted (four-eyes)
    signers: frozenset[str] = frozenset()  # who signed a role of the latest submission
    owners: tuple[str, ...] = ()
    members: dict[str, str] = field(default_factory=dict)  # username -> role in case.yaml

    @property
    def label(self) -> str:
        label = LABELS[self.key][0]
        if self.key == "in_review" and self.purpose:
            return f"{label} voor {PURPOSE_NL[self.purpose]}"
        return label

    @property
    def css(self) -> str:
        return LABELS[self.key][1]


@dataclass(frozen=True)
class CaseView:
    id: str
    title: str
    zaaknummer: str
    case_type: str
    role: str
    status: CaseStatus
    lab_url: str


@dataclass(frozen=True)
class Waiting:
    """One thing that awaits the viewer."""

    kind: str  # "review", "answer", "rejected"
    case_id: str
    title: str
    text: str
    href: str


@dataclass(frozen=True)
class StartData:
    cases: list[CaseView]
    waiting: list[Waiting]
    reviewer_roles: tuple[str, ...]


def _stamp(paths: Iterable[Path | str]) -> tuple:
    out: list[tuple[int, ...] | None] = []
    for p in paths:
        try:
            st = os.stat(p)  # ctime too: granting the service read access (ACL) changes only it
            out.append((st.st_mtime_ns, st.st_ctime_ns, st.st_size))
        except OSError:  # absent, or a folder the service may not enter (yet: ACLs)
            out.append(None)
    return tuple(out)


def _person(p: Any) -> str:
    return str(p.username or p.name)


@dataclass(frozen=True)
class Judged:
    """A status and what it was judged on: ``trusted`` if the service's trust (log,
    registry) took part (a submitted checklist), ``until`` when an approval in it expires."""

    status: CaseStatus
    trusted: bool = False
    until: float | None = None


def evaluate_case(path: Path, config: Any) -> Judged:
    """The checklist status of the case at ``path`` (uncached). ``config`` None: the service
    has no trust loaded, and a status judged without it could say "approved" wrongly."""
    if config is None:
        return Judged(CaseStatus("unreadable", points=(NO_TRUST,)))
    if not os.access(path / CASE_FILE, os.R_OK):  # absent, or no read access (yet: ACLs)
        return Judged(CaseStatus("unreadable", points=(UNREADABLE,)))
    try:
        case = CaseFile(path, parse_case_file(path / CASE_FILE))
        people = {
            "owners": tuple(_person(p) for p in case.spec.owners),
            "members": {_person(p): p.role for p in case.spec.members},
        }
        st = state.evaluate(case, config=config)
    except IdspError as exc:  # read, but not valid: say so, with the library's own words below
        detail = f"{exc.what} ({exc.where})" if getattr(exc, "where", None) else str(exc.what)
        return Judged(CaseStatus("unreadable", points=(INVALID,), details=(detail,)))
    except (OSError, ValueError):
        return Judged(CaseStatus("unreadable", points=(UNREADABLE,)))
    expiries = [
        datetime.fromisoformat(v.payload["expires_at"]).timestamp()
        for v in st.verdicts if v.decision.decision == "approve" and v.payload.get("expires_at")
    ]
    future = [t for t in expiries if t > time.time()]
    return Judged(_status(st, **people), trusted=st.submission is not None, until=min(future, default=None))


def _status(st: state.ChecklistState, **people: Any) -> CaseStatus:
    if st.status == "none":
        return CaseStatus("none", points=("Er is nog geen checklist (`idsp ethics init`).",), **people)
    defn, answers = st.definition, st.answers
    assert defn is not None and answers is not None
    open_items = [i.title for i in defn.items if i.key not in answers.answers]
    sub = st.submission
    common = dict(
        details=tuple(st.reasons),
        open_items=tuple(open_items[:MAX_OPEN_SHOWN]),
        open_count=len(open_items),
        item_count=len(defn.items),
        submitted_at=sub.at.date().isoformat() if sub else "",
        involved=frozenset({a.author for a in answers.answers.values()} | ({sub.by} if sub else set())),
        signed=tuple(f"{role_label(r)}: {who}" for r, who in st.signed_roles.items()),
        signers=frozenset(st.signed_roles.values()),
        **people,
    )
    if st.status == "approved":
        purpose = st.purpose or "use"
        until = min((v.payload.get("expires_at") or "" for v in st.approvals), default="")
        points = (f"Geldig tot {until[:10]}.",) if until else ()
        return CaseStatus(f"approved:{purpose}", purpose=purpose, points=points, **common)
    if st.status in ("rejected", "revoked"):
        return CaseStatus(st.status, purpose=sub.purpose if sub else None, points=_decisions(st), **common)
    if st.status == "in_review":
        assert sub is not None
        waiting = tuple(r for r in defn.signoff_roles if r not in st.signed_roles)
        points = (f"Wacht op ondertekening door: {', '.join(role_label(r) for r in waiting)}.",)
        return CaseStatus("in_review", purpose=sub.purpose, points=points, waiting_roles=waiting, **common)
    if st.status == "expired":
        return CaseStatus("expired", points=("De goedkeuring is verlopen; dien de checklist opnieuw in.",), **common)
    # draft: never submitted, or changed after submission
    if sub is not None:
        points = ("De checklist is gewijzigd na de indiening; dien hem opnieuw in.",)
    elif open_items:
        points = (f"{len(open_items)} van de {len(defn.items)} vragen zijn nog niet beantwoord.",)
    else:
        points = ("Alle vragen zijn beantwoord; de checklist kan worden ingediend (`idsp ethics submit`).",)
    return CaseStatus("draft", points=points, **common)


def _decisions(st: state.ChecklistState) -> tuple[str, ...]:
    """The reviewers' reasons: who rejected or revoked, as what, when, and why."""
    out = []
    for v in st.verdicts:
        d = v.decision
        if d.decision in ("reject", "revoke") and v.ok and st.submission and \
                v.payload.get("submission_id") == st.submission.id:
            verb = "Afgewezen" if d.decision == "reject" else "Ingetrokken"
            reason = v.payload.get("comment") or "geen reden opgegeven"
            out.append(f"{verb} door {d.reviewer} ({role_label(d.role)}) op {d.at.date().isoformat()}: {reason}")
    return tuple(out) or tuple(st.reasons[-1:])


STORE_VERSION = 1
_TUPLES = ("points", "details", "open_items", "waiting_roles", "signed", "owners")


def _tuples(value: Any) -> Any:
    """JSON lists back into the tuples the cache keys compare with."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def _load(store: Path) -> dict[str, tuple[tuple, tuple | None, Judged]]:
    """The cache a previous run saved; anything unreadable or of another version is an empty
    cache (it only costs the time to judge again, never a wrong status: every entry is
    still checked against the files and the trust it was judged on)."""
    try:
        data = json.loads(read_limited(store, what="start page cache", kind="json"))
        if data.get("version") != STORE_VERSION:
            return {}
        out = {}
        for path, e in data["cases"].items():
            st = e["status"]
            status = CaseStatus(**{**st, **{k: tuple(st[k]) for k in _TUPLES},
                                   "involved": frozenset(st["involved"]), "signers": frozenset(st["signers"])})
            out[path] = (_tuples(e["files"]), _tuples(e["trust"]), Judged(status, bool(e["trusted"]), e["until"]))
        return out
    except (OSError, IdspError, ValueError, KeyError, TypeError, AttributeError):
        return {}


class CaseEvents:
    """How many audit-log entries name each case (and how many name none: registry changes),
    read incrementally: the log only grows, so each look reads only the new lines. A log
    that shrank or was replaced is read again from the start."""

    def __init__(self) -> None:
        self.counts: Counter[str | None] = Counter()
        self._where: tuple[str, int] | None = None  # (path, inode) read so far
        self._offset = 0

    def refresh(self, path: Path) -> Counter[str | None]:
        try:
            info = path.stat()
        except OSError:
            self.counts, self._where, self._offset = Counter(), None, 0
            return self.counts
        if self._where != (str(path), info.st_ino) or info.st_size < self._offset:
            self.counts, self._where, self._offset = Counter(), (str(path), info.st_ino), 0
        if info.st_size > self._offset:
            with open(path, "rb") as fh:
                fh.seek(self._offset)
                chunk = fh.read(info.st_size - self._offset)
            whole = chunk.rfind(b"\n") + 1  # a line still being written waits for the next look
            for line in chunk[:whole].splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:
                    entry = None
                self.counts[entry.get("case_id") if isinstance(entry, dict) else None] += 1
            self._offset += whole
        return self.counts


class Overview:
    """Start-page data with a per-case cache. ``config`` gives the platform config whose
    audit log and reviewer registry decide (the service's own); ``trust_files`` the files
    of that registry. A cached status stays while the case's files are unchanged and, for a
    submitted checklist, the registry and the log's entries for that case (and those for no
    case) too, and no approval in it has expired since. With ``store`` (a file in the
    service's own 0700 state) the cache outlives a restart: after ``hub up`` only what
    changed meanwhile is judged again."""

    def __init__(
        self, config: Callable[[], Any], trust_files: Callable[[], Sequence[Path]] = tuple,
        store: Path | None = None,
    ):
        self.config = config
        self.trust_files = trust_files
        self.store = store
        self._cache: dict[str, tuple[tuple, tuple | None, Judged]] = _load(store) if store else {}
        self._dirty = False
        self._events = CaseEvents()
        self._lock = threading.Lock()
        self._saving = threading.Lock()

    def _trust(self, config: Any, case_id: str) -> tuple:
        with self._lock:
            counts = self._events.refresh(audit.log_path(config))
            return _stamp(self.trust_files()), counts[case_id], counts[None]

    def status(self, path: Path, case_id: str = "") -> CaseStatus:
        base = str(path)  # plain strings: 800 stats a page, pathlib's parsing would double it
        files = _stamp([f"{base}/{name}" for name in WATCHED])
        config = self.config()
        if config is None:  # no trust loaded yet: say so, and remember nothing
            return evaluate_case(path, None).status
        case_id = case_id or path.name
        with self._lock:
            hit = self._cache.get(base)
        if hit and hit[0] == files and (hit[2].until is None or time.time() < hit[2].until):
            if not hit[2].trusted or hit[1] == self._trust(config, case_id):
                return hit[2].status
        trust = self._trust(config, case_id)
        judged = evaluate_case(path, config)
        with self._lock:
            self._cache[base] = (files, trust, judged)
            self._dirty = True
        return judged.status

    def warm(self, cases: Iterable[dict[str, Any]]) -> None:
        """Judge ``cases`` ahead of the first page (a thread at service start): a checklist
        is ~100 KiB of YAML, and the first look at 200 of them takes minutes on a busy host."""
        for case in cases:
            self.status(Path(case["path"]), case["id"])
        self.save()

    def save(self) -> None:
        """Write the cache to ``store`` if anything was judged since the last write."""
        if self.store is None:
            return
        with self._saving:  # one writer at a time, so an older state never lands last
            with self._lock:
                if not self._dirty:
                    return
                data = {path: {"files": files, "trust": trust, "trusted": j.trusted, "until": j.until,
                               "status": {**asdict(j.status), "involved": sorted(j.status.involved),
                                          "signers": sorted(j.status.signers)}}
                        for path, (files, trust, j) in self._cache.items()}
                self._dirty = False
            atomic_write(self.store, json.dumps({"version": STORE_VERSION, "cases": data}), mode=0o600)

    def build(
        self, user: str, cases: list[dict[str, Any]], *, hub: str, prefix: str,
        reviewer_roles: Iterable[str] = (), review_cases: list[dict[str, Any]] | None = None,
    ) -> StartData:
        """``cases``: the viewer's own cases (id, path, title, ...; ``role`` if the registry
        gives it); ``review_cases``: the cases whose checklists the viewer may review."""
        roles = tuple(sorted(set(reviewer_roles)))
        views = [self._view(user, c, hub) for c in cases]
        waiting: list[Waiting] = []
        for v in views:
            waiting.extend(_for_member(v, prefix))
        seen = set()
        for c in (review_cases if review_cases is not None else cases) if roles else []:
            if c["id"] in seen:
                continue
            seen.add(c["id"])
            waiting.extend(_for_reviewer(user, c, self.status(Path(c["path"]), c["id"]), roles, prefix))
        if self._dirty and self.store is not None:  # written beside the page, not before it
            threading.Thread(target=self.save, daemon=True, name="idsp-start-save").start()
        return StartData(views, waiting, roles)

    def _view(self, user: str, case: dict[str, Any], hub: str) -> CaseView:
        st = self.status(Path(case["path"]), case["id"])
        return CaseView(
            id=case["id"],
            title=str(case.get("title") or ""),
            zaaknummer=str(case.get("zaaknummer") or ""),
            case_type=TYPE_NL.get(str(case.get("case_type") or "generic"), str(case.get("case_type"))),
            role=_role(user, case.get("role"), st),
            status=st,
            lab_url=f"{hub}user/{quote(user, safe='')}/lab/tree/cases/{quote(case['id'], safe='')}",
        )


def _role(user: str, registry_role: Any, st: CaseStatus) -> str:
    """The viewer's role in the case: the case registry's word where it gives one (on the hub
    ``case.yaml`` decides nothing about membership), else ``case.yaml``'s owners and members;
    a member's role from ``case.yaml`` only names what they do."""
    owner = registry_role == "owner" if registry_role else user in st.owners
    if owner:
        return "projectleider (eigenaar)"
    role = st.members.get(user)
    if role and role != "member":
        return role_label(role).lower() if role in _KNOWN_ROLES else role
    return "lid"


_KNOWN_ROLES = {"projectleider", "data-scientist", "jurist", "privacy-officer", "ethicus", "domeinspecialist"}


def _for_member(v: CaseView, prefix: str) -> list[Waiting]:
    st = v.status
    if st.key == "draft" and st.open_count:
        return [Waiting("answer", v.id, v.title, f"{st.open_count} vragen nog te beantwoorden", v.lab_url)]
    if st.key == "draft" and st.submitted_at:
        return [Waiting("answer", v.id, v.title, "gewijzigd na indiening: opnieuw indienen", v.lab_url)]
    if st.key in ("rejected", "revoked") and v.role.startswith("projectleider"):
        return [Waiting("rejected", v.id, v.title, st.points[0] if st.points else st.label, v.lab_url)]
    return []


def _for_reviewer(user: str, case: dict[str, Any], st: CaseStatus, roles: tuple[str, ...], prefix: str) -> list[Waiting]:
    if st.key != "in_review" or user in st.involved or user in st.signers:
        return []  # four-eyes: not who worked on it; and one role per reviewer
    mine = [r for r in st.waiting_roles if r in roles]
    if not mine:
        return []
    text = (f"ter beoordeling als {', '.join(role_label(r) for r in mine)}"
            f" (voor {PURPOSE_NL.get(st.purpose or 'use')}, ingediend {st.submitted_at})")
    return [Waiting("review", case["id"], str(case.get("title") or ""), text,
                    f"{prefix}review/{quote(case['id'], safe='')}/{st.purpose or 'use'}")]
