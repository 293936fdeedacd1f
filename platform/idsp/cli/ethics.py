"""`idsp ethics`: the legal/ethical checklist of a case, its review, the run gate, the audit log.

Rule: thin commands — parse, call ``legal_ethics``, print. Imports of ``legal_ethics``
happen inside the commands so ``idsp --help`` stays light. Exit 0 ok, 1 when the answer is
no (gate refused, audit log broken, refused step), 2 for bad usage or input.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

import typer

from idsp.cli._common import JSON_OPTION, console, print_json

app = typer.Typer(
    help="Legal/ethical checklist of a case: answer, review with signed four-eyes approvals, the run gate.",
    no_args_is_help=True,
)
reviewer_app = typer.Typer(help="Manage the platform's reviewer registry (platform admin).", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
catalogue_app = typer.Typer(help="The catalogue of official requirements and questions.", no_args_is_help=True)
app.add_typer(reviewer_app, name="reviewer")
app.add_typer(audit_app, name="audit")
app.add_typer(catalogue_app, name="catalogue")

CASE_OPTION = typer.Option(None, "--case", "-C", help="Case folder (default: found upwards from here).")
KEY_OPTION = typer.Option(None, "--key", help="Your Ed25519 key file (default: $IDSP_KEY_FILE or ~/.idsp-keys/ed25519.pem).")


def _case(path: Path | None):
    from idsp.case import Case

    return Case.open(path)


def _cfg():
    from idsp.config import load_config

    return load_config()


def _mode() -> dict[str, str]:
    """Which mode records and decides here, said on every status: a laptop trusts its user."""
    from idsp.service.client import IN_PROCESS_NOTE, on_hub

    if on_hub():
        return {"mode": "hub", "note": "hub mode: who you are comes from the hub, and the platform service "
                "records answers and submissions; other entries made here are marked as recorded by this process"}
    return {"mode": "in-process", "note": IN_PROCESS_NOTE}


@app.command("init")
def init(force: bool = typer.Option(False, "--force", help="Rebuild an existing checklist (approvals must be renewed)."),
         case: Path = CASE_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Build ethics/checklist.yaml from the profile in case.yaml (incl. the DPIA pre-scan)."""
    from legal_ethics import checklist, init_checklist

    c = _case(case)
    path = init_checklist(c, force=force)
    defn = checklist.load_definition(c)
    data = {"path": str(path), "items": len(defn.items), "blocking": sum(i.blocking for i in defn.items),
            "signoff_roles": list(defn.signoff_roles), "prescan": defn.prescan}
    if as_json:
        print_json(data)
        return
    console().print(f"checklist written: {path}")
    console().print(f"{data['items']} items, {data['blocking']} blocking; sign-off: {', '.join(defn.signoff_roles)}")
    for line in defn.prescan.get("because", []):
        console().print(f"  pre-scan: {line}", highlight=False)


@app.command("prescan")
def prescan_cmd(case: Path = CASE_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Run the DPIA pre-scan rules on case.yaml's profile and show the outcome."""
    from legal_ethics.profiles import PRESCAN_KEYS, prescan

    outcome = prescan(_case(case).spec)
    if as_json:
        print_json({**outcome.as_dict(), "known_keys": PRESCAN_KEYS})
        return
    console().print(f"DPIA {outcome.dpia}, DTIA {outcome.dtia}, IAMA {outcome.iama}, KIA {outcome.kia}")
    for line in (*outcome.because, *(f"implied: {i}" for i in outcome.implied)):
        console().print(f"  {line}", highlight=False)


@app.command("status")
def status(items: bool = typer.Option(False, "--items", help="List every item with its answer."),
           case: Path = CASE_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Where the checklist stands: status, signatures, open points."""
    from rich.table import Table

    from legal_ethics import checklist, state

    c = _case(case)
    st = state.evaluate(c)
    data = st.as_dict() | {"mode": _mode()}
    if st.definition is not None and st.answers is not None:
        data["open_points"] = checklist.item_problems(c, st.definition, st.answers) + checklist.evidence_problems(c, st.answers)
        answered = st.answers.answers
        data["items"] = [
            {"key": i.key, "official_id": i.official_id, "title": i.title, "blocking": i.blocking,
             "phase": i.phase, "answer_type": i.answer_type,
             "answer": answered[i.key].value if i.key in answered else None}
            for i in st.definition.items
        ] if items else None
        data["answered"] = sum(1 for i in st.definition.items if i.key in answered)
        data["total"] = len(st.definition.items)
    if as_json:
        print_json(data)
        return
    out = console()
    detail = ""
    if st.status == "approved":
        detail = f" for {st.purpose}" + (" only (not for use)" if st.purpose == "development" else "")
    elif st.submission is not None:
        detail = f" (submitted for {st.submission.purpose})"
    out.print(f"status: [bold]{st.status}[/]{detail}", highlight=False)
    out.print(data["mode"]["note"], highlight=False, soft_wrap=True)
    if st.definition is None:
        out.print("no checklist: run `idsp ethics init`")
        return
    out.print(f"answered {data['answered']}/{data['total']}; content sha256 {st.content_sha256}", highlight=False)
    roles = Table("role", "signed by")
    for role in st.definition.signoff_roles:
        roles.add_row(role, st.signed_roles.get(role, "-"))
    out.print(roles)
    for reason in (*st.reasons, *data["open_points"]):
        out.print(f"  - {reason}", highlight=False, soft_wrap=True)
    if items:
        table = Table("key", "blocking", "phase", "type", "answer", "title")
        for row in data["items"]:
            table.add_row(row["key"], "yes" if row["blocking"] else "", row["phase"], row["answer_type"],
                          "" if row["answer"] is None else str(row["answer"]), row["title"])
        out.print(table)


@app.command("answer")
def answer(
    key: str = typer.Argument(None, help="Item key, e.g. ak.grw-02 (see `idsp ethics status --items`)."),
    value: str = typer.Argument(None, help="The answer; omit for a metric check (read from its artefact)."),
    rationale: str = typer.Option("", "--rationale", "-r", help="Why; required for nvt and deels."),
    evidence: list[Path] = typer.Option([], "--evidence", "-e", help="Evidence file inside the case (repeatable)."),
    from_file: Path = typer.Option(None, "--from", help="YAML with many answers: KEY: {value, rationale, evidence: [..]}."),
    case: Path = CASE_OPTION, as_json: bool = JSON_OPTION,
) -> None:
    """Answer items; evidence files are hashed (sha256) and bound to the answer."""
    from idsp.errors import UserError
    from legal_ethics import workflow
    from legal_ethics.storage import read_yaml

    c = _case(case)
    if (from_file is None) == (key is None):
        raise UserError("give either KEY [VALUE] or --from FILE", fix="See `idsp ethics answer --help`")
    if from_file is not None:
        data = read_yaml(from_file, what="answers file", fix="Write KEY: {value: ..., rationale: ..., evidence: [...]}")
        if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
            raise UserError("the answers file must map item keys to {value, rationale, evidence}", where=str(from_file))
        made = workflow.answer_many(c, [{"key": k, **v} for k, v in data.items()])
    else:
        made = [workflow.answer(c, key, value, rationale=rationale, evidence=[str(e) for e in evidence])]
    if as_json:
        print_json([a.model_dump(mode="json") for a in made] if from_file else made[0].model_dump(mode="json"))
        return
    for ans in made:
        extra = f", {len(ans.evidence)} evidence file(s)" if ans.evidence else ""
        console().print(f"{ans.key} = {ans.value!r} by {ans.author}{extra}", highlight=False)


PURPOSE_HELP = ("development: runs on official data may build and evaluate the model (the items of phase use "
                "wait for their reports); use: everything, registering the model included.")


@app.command("submit")
def submit(note: str = typer.Option("", "--note", help="A note for the reviewers."),
           purpose: str = typer.Option("use", "--purpose", help=PURPOSE_HELP),
           case: Path = CASE_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Submit the checklist for review (draft -> in_review), for development or for use."""
    from legal_ethics import workflow

    sub = workflow.submit(_case(case), note=note, purpose=purpose)
    if as_json:
        print_json(sub.model_dump(mode="json"))
    else:
        console().print(f"submitted {sub.id} for {sub.purpose} (content sha256 {sub.content_sha256})", highlight=False)


def _decide(decision: str, case: Path | None, role: str, key: Path | None, comment: str, as_json: bool) -> None:
    from legal_ethics import state, workflow

    c = _case(case)
    signed = workflow.decide(c, decision, role=role, key_path=key, comment=comment)
    st = state.evaluate(c)
    if as_json:
        print_json({"decision": signed.model_dump(mode="json"), "status": st.status, "reasons": st.reasons})
        return
    purpose = signed.payload.get("purpose", "use")
    console().print(f"{decision} {signed.id} signed by {signed.reviewer} as {role}, for {purpose}; "
                    f"status now {st.status}", highlight=False)
    for reason in st.reasons:
        console().print(f"  - {reason}", highlight=False, soft_wrap=True)


@app.command("approve")
def approve(role: str = typer.Option(..., "--role", help="The role you sign for, e.g. jurist."),
            key: Path = KEY_OPTION, comment: str = typer.Option("", "--comment"),
            case: Path = CASE_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Approve the submitted checklist with your signature (never your own work)."""
    _decide("approve", case, role, key, comment, as_json)


@app.command("reject")
def reject(role: str = typer.Option(..., "--role"), reason: str = typer.Option(..., "--reason", help="Why, for the team."),
           key: Path = KEY_OPTION, case: Path = CASE_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Reject the submitted checklist, signed, with a reason."""
    _decide("reject", case, role, key, reason, as_json)


@app.command("revoke")
def revoke(role: str = typer.Option(..., "--role"), reason: str = typer.Option(..., "--reason"),
           key: Path = KEY_OPTION, case: Path = CASE_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Revoke an approval, for instance after an incident; runs on official data stop."""
    _decide("revoke", case, role, key, reason, as_json)


@app.command("verify")
def verify(dataset: list[str] = typer.Option([], "--dataset", "-d", help="Dataset to run on (default: all official ones)."),
           purpose: str = typer.Option("use", "--purpose", help="The run's purpose. " + PURPOSE_HELP),
           case: Path = CASE_OPTION, as_json: bool = JSON_OPTION) -> None:
    """The run gate: exit 0 if a run may start, 1 with every reason if not."""
    from legal_ethics import audit, gate
    from legal_ethics.reviewers import current_user
    from legal_ethics.schema import Purpose

    c = _case(case)
    names = list(dataset) or [d.name for d in c.spec.datasets if d.official] or [d.name for d in c.spec.datasets]
    decision = gate.check(c, names, purpose=cast(Purpose, purpose))  # the gate refuses an unknown one
    audit.append("gate.checked", actor=current_user(), case_id=c.id, datasets=names, allowed=decision.allowed,
                 purpose=purpose,
                 official=decision.official, reasons=decision.reasons, checklist_hash=decision.checklist_hash,
                 approval_ids=decision.approval_ids)
    if as_json:
        print_json(decision.as_dict())
    else:
        out = console()
        if decision.allowed:
            kind = "official" if decision.official else "exploratory"
            what = f"{kind} run for {purpose}" if decision.official else f"{kind} run"
            out.print(f"gate open: {what} on {', '.join(names)} allowed (checklist {decision.checklist_hash})",
                      highlight=False)
            for warning in decision.warnings:
                out.print(f"  warning: {warning}", highlight=False, soft_wrap=True)
        else:
            out.print(f"gate closed: a run on {', '.join(names)} is refused because", highlight=False)
            for reason in decision.reasons:
                out.print(f"  - {reason}", highlight=False, soft_wrap=True)
    raise typer.Exit(0 if decision.allowed else 1)


@app.command("render")
def render(fmt: str = typer.Option("md", "--format", "-f", help="md or html."),
           out: Path = typer.Option(None, "--out", "-o", help="Write here instead of stdout."),
           case: Path = CASE_OPTION) -> None:
    """The checklist with answers, evidence, status and signatures, for reviewers."""
    import sys

    from idsp.errors import UserError
    from legal_ethics import render as renderers
    from legal_ethics.storage import atomic_write

    if fmt not in renderers.RENDERERS:
        raise UserError(f"unknown format {fmt!r}", where="--format", fix=f"Use one of {', '.join(renderers.RENDERERS)}")
    text = renderers.RENDERERS[fmt](renderers.view(_case(case)))
    if out:
        atomic_write(out, text)
        console().print(f"written: {out}")
    else:
        sys.stdout.write(text)


@app.command("export-register")
def export_register(
    out: Path = typer.Option(..., "--out", "-o", help="The JSON file to write."),
    status: str = typer.Option("In ontwikkeling", "--status", help="In ontwikkeling, In gebruik or Buiten gebruik."),
    contact: str = typer.Option(None, "--contact", help="Contact e-mail (default: first owner with an e-mail)."),
    category: list[str] = typer.Option([], "--category", help="Thema (repeatable), e.g. Economie."),
    website: str = typer.Option(None, "--website"),
    case: Path = CASE_OPTION, as_json: bool = JSON_OPTION,
) -> None:
    """An Algoritmeregister entry (publication standard 1.0), checked field by field."""
    import json

    from legal_ethics.register import build_entry
    from legal_ethics.storage import atomic_write

    entry = build_entry(_case(case), status=status, contact_email=contact, categories=tuple(category), website=website)
    atomic_write(out, json.dumps(entry, indent=2, ensure_ascii=False) + "\n")
    if as_json:
        print_json(entry)
    else:
        console().print(f"written: {out} ({len(entry)} fields, publication category {entry['publication_category']})")


@app.command("keygen")
def keygen(key: Path = KEY_OPTION, force: bool = typer.Option(False, "--force"), as_json: bool = JSON_OPTION) -> None:
    """Make your Ed25519 key pair; give the printed public key to the platform admin."""
    from legal_ethics.reviewers import keygen as make

    pair = make(key, force=force)
    if as_json:
        print_json({"key_file": str(pair.path), "public_key": pair.public_key})
        return
    console().print(f"private key: {pair.path} (mode 0600, keep it to yourself)")
    console().print(f"public key:  {pair.public_key}", highlight=False)
    console().print("ask the admin: idsp ethics reviewer add YOUR_NAME --role ROLE --public-key " + pair.public_key, highlight=False)


@reviewer_app.command("add")
def reviewer_add(
    username: str = typer.Argument(...),
    role: list[str] = typer.Option(..., "--role", help="Role (repeatable): jurist, privacy-officer, ethicus, ..."),
    public_key: str = typer.Option(..., "--public-key", help="Base64 public key from `idsp ethics keygen`."),
    name: str = typer.Option("", "--name"), as_json: bool = JSON_OPTION,
) -> None:
    """Add or replace a reviewer (written to the registry and vouched for in the audit log)."""
    from legal_ethics.reviewers import register

    r = register(username, list(role), public_key, name=name, config=_cfg())
    if as_json:
        print_json({**r.model_dump(mode="json"), "fingerprint": r.fingerprint})
    else:
        console().print(f"reviewer {r.username} registered with roles {', '.join(r.roles)}")


@reviewer_app.command("remove")
def reviewer_remove(username: str = typer.Argument(...)) -> None:
    """Remove a reviewer; their signatures stop counting."""
    from legal_ethics.reviewers import unregister

    unregister(username, config=_cfg())
    console().print(f"reviewer {username} removed")


@reviewer_app.command("list")
def reviewer_list(as_json: bool = JSON_OPTION) -> None:
    """The reviewers, their roles and whether the audit log vouches for their entry."""
    from rich.table import Table

    from legal_ethics.reviewers import load_registry, registry_path, vouched_fingerprints

    cfg = _cfg()
    reg, vouched = load_registry(cfg), vouched_fingerprints(cfg)
    rows = [{"username": r.username, "name": r.name, "roles": list(r.roles), "public_key": r.public_key,
             "vouched": vouched.get(r.username) == r.fingerprint} for r in reg.reviewers]
    if as_json:
        print_json({"registry": str(registry_path(cfg)), "reviewers": rows})
        return
    table = Table("username", "name", "roles", "vouched by audit log")
    for r in reg.reviewers:
        table.add_row(r.username, r.name, ", ".join(r.roles), "yes" if vouched.get(r.username) == r.fingerprint else "NO")
    console().print(table)


@audit_app.command("verify")
def audit_verify(
    against_tracking: bool = typer.Option(
        False, "--against-tracking",
        help="Also compare with the audit hashes the tracking server recorded on each run "
             "(catches a log rewritten consistently, head file included).",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Recompute the hash chain; exit 1 naming each edited, deleted, inserted or reordered entry.

    On the hub the platform service checks its own log (the official one); entries this
    process wrote itself are checked as the local log, marked unproved."""
    from idsp.service.client import hub_service, on_hub

    local = _verify_local(against_tracking)
    if not on_hub():
        _print_verdict("audit log", local, as_json)
        raise typer.Exit(0 if local["status"] in ("intact", "none") else 1)
    official = hub_service().verify()
    if against_tracking:  # the service's own log against every run on the hub's MLflow (service/runner_verify.py)
        from idsp.cli.run import _call

        tracked = _call(hub_service(), "GET", "api/runs/verify", timeout=300.0)
        official = {**official, "problems": [*official.get("problems", []), *tracked["problems"]],
                    "runs_compared": tracked["runs_compared"]}  # fmt: skip
        if tracked["problems"]:
            official["status"] = "broken"
    if as_json:
        print_json({"service": official, "process": local})
    else:
        _print_verdict("platform audit log (platform service)", official, False)
        if local["status"] != "none":
            _print_verdict("entries recorded by this process (unproved)", local, False)
    bad = official["status"] != "intact" or local["status"] not in ("intact", "none")
    raise typer.Exit(1 if bad else 0)


def _verify_local(against_tracking: bool) -> dict:
    from dataclasses import replace

    from idsp.service.client import on_hub
    from legal_ethics import audit

    cfg = _cfg()
    report = audit.verify(cfg)
    out = report.as_dict()
    if against_tracking and not report.missing:
        from idsp.tracking import tracking_uri
        from idsp.tracking.registry import run_claims

        claims = run_claims(cfg)  # every run's tags: official status and approval compared too
        if on_hub():  # the runner's runs anchor in the service's log, which the service compares
            claims = {run_id: tags for run_id, tags in claims.items() if "idsp.runner" not in tags}
        anchors = {run_id: tags.get(audit.AUDIT_TAG) for run_id, tags in claims.items()}
        problems = audit.check_anchors(anchors, cfg, tracking_uri=tracking_uri(cfg), claims=claims)
        out = replace(report, problems=report.problems + problems).as_dict()
        out["runs_compared"] = sum(1 for tag in anchors.values() if tag)
    return out


def _print_verdict(what: str, report: dict, as_json: bool) -> None:
    if as_json:
        print_json(report)
        return
    where = f" ({report['path']})" if report.get("path") else ""
    status = report["status"]
    if status == "intact":
        compared = report.get("runs_compared")
        agrees = "" if compared is None else f"; agrees with the {compared} run(s) on the tracking server"
        console().print(f"{what} intact: {report['entries']} entries{where}{agrees}", highlight=False, soft_wrap=True)
    elif status == "none":
        console().print(f"{what}: none yet{where}; nothing has been recorded here", highlight=False, soft_wrap=True)
    else:
        console().print(f"{what} {'MISSING' if status == 'missing' else 'BROKEN'}{where}:", highlight=False, soft_wrap=True)
        for p in report["problems"]:
            console().print(f"  - {p}", highlight=False, soft_wrap=True)


@audit_app.command("show")
def audit_show(case_id: str = typer.Option(None, "--case-id", help="Only this case."),
               tail: int = typer.Option(20, "--tail", help="Last N entries (0 = all)."), as_json: bool = JSON_OPTION) -> None:
    """The latest audit entries."""
    from rich.table import Table

    from legal_ethics import audit

    rows = [e for e in audit.entries(_cfg()) if case_id is None or e.get("case_id") == case_id]
    rows = rows[-tail:] if tail else rows
    if as_json:
        print_json(rows)
        return
    table = Table("seq", "time", "event", "actor", "case", "data")
    for e in rows:
        table.add_row(str(e.get("seq")), str(e.get("ts", ""))[:19], str(e.get("event")), str(e.get("actor")),
                      str(e.get("case_id") or ""), ", ".join(f"{k}={v}" for k, v in (e.get("data") or {}).items())[:80])
    console().print(table)


@catalogue_app.command("list")
def catalogue_list(as_json: bool = JSON_OPTION) -> None:
    """The catalogues with their versions, sources and item counts."""
    from rich.table import Table

    from legal_ethics import catalogue

    rows = [{"id": c.id, "title": c.title, "version": c.version, "items": len(c.items),
             "source": c.upstream.repo, "commit": c.upstream.commit} for c in catalogue.catalogues()]
    if as_json:
        print_json(rows)
        return
    table = Table("id", "title", "version", "items", "source")
    for cat in catalogue.catalogues():
        table.add_row(cat.id, cat.title, cat.version, str(len(cat.items)), f"{cat.upstream.repo}@{(cat.upstream.commit or '')[:7]}")
    console().print(table)


@catalogue_app.command("import")
def catalogue_import(folder: Path = typer.Argument(..., help="Checkout of MinBZK/task-registry or MinBZK/par-dpia-form."),
                     as_json: bool = JSON_OPTION) -> None:
    """Compare an official checkout with our catalogue: ids added, removed, retitled."""
    from legal_ethics import importer

    diffs = importer.diff(folder)
    if as_json:
        print_json([d.as_dict() for d in diffs])
        return
    for d in diffs:
        head = f"{d.catalogue}: upstream {d.upstream_count}, ours {d.ours_count}"
        if d.version_upstream != d.version_ours:
            head += f", version {d.version_ours} -> {d.version_upstream}"
        console().print(head + ("" if d.changed else " — no differences"), highlight=False)
        for label, ids in (("added", d.added), ("removed", d.removed), ("retitled", d.retitled)):
            if ids:
                console().print(f"  {label}: {', '.join(ids)}", highlight=False, soft_wrap=True)
