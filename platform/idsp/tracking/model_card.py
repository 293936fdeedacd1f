"""The model card of a run, in Markdown and HTML, built from what the run recorded.

Rule: a model card states only what the tracking server, the case file and the run's
artefacts say — the approval, data versions, quality result and fairness result — and
says plainly what is missing; whether the run is *official* it takes from the audit log's
record of the run's start (``legal_ethics.audit.run_started``), never from the run's tags,
which a case member can set; it is one section list rendered twice (Markdown, HTML), so
the two never disagree.
"""

from __future__ import annotations

import html
import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from idsp.files import atomic_write
from idsp.tracking.client import connect
from idsp.tracking.guard import check_file
from idsp.tracking.provenance import TAG, tag_key
from legal_ethics import audit

if TYPE_CHECKING:  # pragma: no cover
    from idsp.case_file import CaseFile
    from idsp.config import PlatformConfig

Section = tuple[str, list[Any]]  # (title, blocks); a block is str (paragraph) or ("table", header, rows)


def build(run_id: str, *, config: PlatformConfig, case: CaseFile | None = None) -> tuple[str, list[Section]]:
    """Collect the facts of a run into (title, sections); ``case`` adds purpose and legal basis."""
    uri, client = connect(config)
    run = client.get_run(run_id)
    tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
    datasets = [d for d in tags.get(f"{TAG}datasets", "").split(",") if d]
    fairness = _artifact_json(client, run_id, "reports/fairness.json")
    versions = json.loads(tags.get(f"{TAG}versions", "{}") or "{}")
    title = f"Model card: {run.info.run_name} ({tags.get(f'{TAG}case_id', '?')})"
    not_official = audit.official_problems(run_id, tags, audit.run_started(run_id, config), purpose=None)
    sections: list[Section] = [
        ("Overview", _overview(run, uri, case, not_official)),
        ("Approval", _approval(tags)),
        ("Data and data quality", _data(tags, datasets)),
        (
            "Parameters and metrics",
            [
                ("table", ["parameter", "value"], [[k, v] for k, v in sorted(params.items())])
                if params
                else "No parameters logged.",
                ("table", ["metric", "last value"], [[k, f"{v:.6g}"] for k, v in sorted(metrics.items())])
                if metrics
                else "No metrics logged.",
            ],
        ),
        ("Fairness", _fairness_blocks(fairness)),
        ("Software", [("table", ["package", "version"], [[k, v] for k, v in sorted(versions.items())])]),
        ("Limitations and warnings", _limits(tags, datasets, fairness, not_official) or ["None recorded."]),
    ]
    return title, sections


def _overview(run: Any, uri: str, case: CaseFile | None, not_official: list[str]) -> list[Any]:
    tags = run.data.tags
    if not not_official:
        status = "**Official run** — the audit log records it as made under the approval below; it may support " \
                 "supervision decisions."
    elif tags.get(f"{TAG}official") == "true":
        status = "**Not an official run** — its tags say official, but the audit log does not: " + \
                 "; ".join(not_official) + ". Not for decisions; it cannot be registered as a model."
    else:
        status = "**Exploratory run** (idsp.approval=none) — synthetic or non-personal data only; " \
                 "not for decisions and it cannot be registered as a model."
    overview: list[Any] = [
        status,
        (
            "table",
            ["field", "value"],
            [
                ["Case", tags.get(f"{TAG}case_id", "")],
                ["Zaaknummer", tags.get(f"{TAG}zaaknummer", "")],
                ["Inspectorates", tags.get(f"{TAG}inspectorates", "")],
                ["Run", f"{run.info.run_name} ({run.info.run_id})"],
                ["Status", run.info.status],
                ["Tracking server", uri],
            ],
        ),
    ]
    spec = case.spec if case is not None else None
    if spec is not None:
        if spec.purpose:
            overview.append(f"Purpose (doelbinding): {spec.purpose}")
        if spec.legal_basis:
            overview.append(
                "Legal basis (grondslag): " + "; ".join(f"{b.act} {b.article}" for b in spec.legal_basis)
            )
    return overview


def _approval(tags: dict[str, str]) -> list[Any]:
    rows = [
        ["Approval ids", tags.get(f"{TAG}approval", "none")],
        ["Checklist content sha256", tags.get(f"{TAG}checklist_hash", "none")],
        ["Checklist status at run start", tags.get(f"{TAG}checklist_status", "none")],
        ["Code sha256", tags.get(f"{TAG}code_hash", "not bound")],
        ["params.yaml sha256", tags.get(f"{TAG}params_hash", "not bound")],
        ["Git commit", tags.get(f"{TAG}git.commit", "none")],
        ["Uncommitted changes", tags.get(f"{TAG}git.dirty", "unknown")],
    ]
    return [("table", ["field", "value"], rows)]


def _data(tags: dict[str, str], datasets: list[str]) -> list[Any]:
    rows = []
    for name in datasets:
        key = tag_key(name)
        rows.append(
            [
                name,
                tags.get(f"{TAG}data.{key}.kind", ""),
                tags.get(f"{TAG}data.{key}.dvc_md5", "none"),
                tags.get(f"{TAG}quality.{key}", "none"),
                tags.get(f"{TAG}quality.{key}.sha256", ""),
                tags.get(f"{TAG}quality.{key}.data_match", ""),
            ]
        )
    blocks: list[Any] = [
        ("table", ["dataset", "kind", "DVC md5", "quality", "quality evidence sha256", "same data"], rows)
        if rows
        else "No datasets were declared for this run."
    ]
    key_ids = json.loads(tags.get(f"{TAG}pseudonymisation.key_ids", "{}") or "{}")
    if key_ids:
        blocks.append("Pseudonymisation key ids: " + ", ".join(f"{d}: {k}" for d, k in key_ids.items()))
    return blocks


def _limits(tags: dict[str, str], datasets: list[str], fairness: dict[str, Any] | None,
            not_official: list[str]) -> list[str]:
    limits = []
    if not_official:
        limits.append("Not official (audit log): not approved for use on real or personal data.")
    if tags.get(f"{TAG}git.dirty") == "true":
        limits.append("The code had uncommitted changes when the run started.")
    if fairness is None:
        limits.append("No fairness report was logged (run.log_fairness).")
    elif fairness.get("small_groups"):
        limits.append(
            f"Groups with fewer than {fairness['min_group_size']} cases: "
            + "; ".join(", ".join(f"{k}={v}" for k, v in g.items()) for g in fairness["small_groups"])
            + " — do not draw conclusions for them."
        )
    for name in datasets:
        q = tags.get(f"{TAG}quality.{tag_key(name)}", "none")
        if not q.startswith("passed"):
            limits.append(f"Dataset {name}: quality result is '{q}'.")
    return limits


def _artifact_json(client, run_id: str, path: str) -> dict[str, Any] | None:
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = client.download_artifacts(run_id, path, tmp)
        except Exception:  # not logged: the card says so
            return None
        return json.loads(Path(local).read_text(encoding="utf-8"))


def _fairness_blocks(report: dict[str, Any] | None) -> list[Any]:
    if report is None:
        return ["No fairness report was logged for this run."]
    d, ci = report["disparities"], report.get("disparity_ci", {})

    def with_ci(name: str) -> str:
        value = d.get(name)
        bounds = ci.get(name)
        return f"{value} [{bounds[0]}, {bounds[1]}]" if bounds else str(value)

    blocks: list[Any] = [
        f"Sensitive feature(s): {', '.join(report['sensitive_features'])}; n = {report['n']}; "
        f"{report['n_boot']} bootstrap resamples, interval {report['ci_quantiles']}.",
        (
            "table",
            ["disparity", "value [interval]"],
            [[name.replace("_", " "), with_ci(name)] for name in ("demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference")],
        ),
        (
            "table",
            ["group", "n", "selection rate", "precision", "FPR", "FNR"],
            [
                [
                    ", ".join(f"{k}={v}" for k, v in g["group"].items()) + (" (small)" if g["small_group"] else ""),
                    g["n"],
                    _fmt(g, "selection_rate"),
                    _fmt(g, "precision"),
                    _fmt(g, "false_positive_rate"),
                    _fmt(g, "false_negative_rate"),
                ]
                for g in report["by_group"]
            ],
        ),
    ]
    if report.get("conditional"):
        blocks.append(
            (
                "table",
                ["within", "selection-rate difference", "ratio", "smallest group n"],
                [
                    [", ".join(f"{k}={v}" for k, v in c["control"].items()), c["selection_rate_difference"], c["selection_rate_ratio"], c["smallest_group_n"]]
                    for c in report["conditional"]
                ],
            )
        )
    return blocks


def _fmt(group: dict[str, Any], metric: str) -> str:
    value = group.get(metric)
    bounds = group.get(f"{metric}_ci")
    if value is None:
        return "n/a"
    if bounds and bounds[0] is not None:
        return f"{value:.3f} [{bounds[0]:.3f}, {bounds[1]:.3f}]"
    return f"{value:.3f}"


# -- renderers -------------------------------------------------------------------------------


def _md_cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def to_markdown(title: str, sections: list[Section]) -> str:
    lines = [f"# {title}", ""]
    for name, blocks in sections:
        lines += [f"## {name}", ""]
        for block in blocks:
            if isinstance(block, tuple):
                _, header, rows = block
                lines.append("| " + " | ".join(header) + " |")
                lines.append("|" + "---|" * len(header))
                lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
            else:
                lines.append(str(block))
            lines.append("")
    return "\n".join(lines)


_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;color:#1b1b1b}"
    "table{border-collapse:collapse;margin:.5rem 0 1rem}th,td{border:1px solid #ccc;padding:.3rem .5rem;"
    "text-align:left;font-size:.9rem}th{background:#f2f2f2}"
)


def to_html(title: str, sections: list[Section]) -> str:
    e = html.escape
    parts = [
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>'
        f"<style>{_CSS}</style></head><body><h1>{e(title)}</h1>"
    ]
    for name, blocks in sections:
        parts.append(f"<h2>{e(name)}</h2>")
        for block in blocks:
            if isinstance(block, tuple):
                _, header, rows = block
                parts.append(
                    "<table><thead><tr>"
                    + "".join(f"<th>{e(str(h))}</th>" for h in header)
                    + "</tr></thead><tbody>"
                    + "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>" for row in rows)
                    + "</tbody></table>"
                )
            else:
                text = e(str(block))
                while "**" in text:  # the only inline markup the builder uses
                    text = text.replace("**", "<strong>", 1).replace("**", "</strong>", 1)
                parts.append(f"<p>{text}</p>")
    parts.append("</body></html>\n")
    return "".join(parts)


def write(
    run_id: str,
    *,
    output: str | Path | None = None,
    config: PlatformConfig | None = None,
    case: CaseFile | None = None,
) -> dict[str, Path]:
    """Write ``model-card.md`` and ``model-card.html`` into ``output`` (a new temporary folder
    when None); without ``case`` the card says only what the tracking server recorded."""
    if config is None:
        from idsp.config import load_config

        config = load_config()
    title, sections = build(run_id, config=config, case=case)
    folder = Path(output) if output else Path(tempfile.mkdtemp(prefix="idsp-model-card-"))
    md_path, html_path = folder / "model-card.md", folder / "model-card.html"
    atomic_write(md_path, to_markdown(title, sections))
    atomic_write(html_path, to_html(title, sections))
    return {"markdown": md_path, "html": html_path}


def log(run_id: str, paths: dict[str, Path], *, config: PlatformConfig) -> None:
    """Log written card files as artefacts of a run that is not open in this process."""
    _, client = connect(config)
    for path in paths.values():
        check_file(path)
    for path in paths.values():
        client.log_artifact(run_id, str(path), "model_card")
