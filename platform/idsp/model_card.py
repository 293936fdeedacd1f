"""The model card of a run, in Markdown and HTML, built from what the run recorded.

Rule: a model card states only what the tracking server, the case file and the run's
artefacts say — the approval, data versions, quality result and fairness result — and
says plainly what is missing; it is one section list rendered twice (Markdown, HTML), so
the two never disagree.
"""

from __future__ import annotations

import html
import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from idsp.case import Case

Section = tuple[str, list[Any]]  # (title, blocks); a block is str (paragraph) or ("table", header, rows)


def build(run_id: str, *, config=None, case: Case | None = None) -> tuple[str, list[Section]]:
    """Collect the facts of a run into (title, sections)."""
    from idsp import tracking
    from idsp.config import load_config

    config = config or load_config()
    uri = tracking.tracking_uri(config)
    tracking._client_env(config)
    tracking.ensure_server(uri, config)
    client = tracking._client(uri)
    run = client.get_run(run_id)
    tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
    t = tracking.TAG
    official = tags.get(f"{t}official") == "true"
    spec = case.spec if case is not None else None
    title = f"Model card: {run.info.run_name} ({tags.get(f'{t}case_id', '?')})"
    sections: list[Section] = []

    status = (
        "**Official run** — made under the approval below; it may support supervision decisions."
        if official
        else "**Exploratory run** (idsp.approval=none) — synthetic or non-personal data only; "
        "not for decisions and it cannot be registered as a model."
    )
    overview = [
        status,
        (
            "table",
            ["field", "value"],
            [
                ["Case", tags.get(f"{t}case_id", "")],
                ["Zaaknummer", tags.get(f"{t}zaaknummer", "")],
                ["Inspectorates", tags.get(f"{t}inspectorates", "")],
                ["Run", f"{run.info.run_name} ({run_id})"],
                ["Status", run.info.status],
                ["Tracking server", uri],
            ],
        ),
    ]
    if spec is not None:
        if spec.purpose:
            overview.append(f"Purpose (doelbinding): {spec.purpose}")
        if spec.legal_basis:
            overview.append(
                "Legal basis (grondslag): " + "; ".join(f"{b.act} {b.article}" for b in spec.legal_basis)
            )
    sections.append(("Overview", overview))

    sections.append(
        (
            "Approval",
            [
                (
                    "table",
                    ["field", "value"],
                    [
                        ["Approval ids", tags.get(f"{t}approval", "none")],
                        ["Checklist content sha256", tags.get(f"{t}checklist_hash", "none")],
                        ["Checklist status at run start", tags.get(f"{t}checklist_status", "none")],
                        ["Code sha256", tags.get(f"{t}code_hash", "not bound")],
                        ["params.yaml sha256", tags.get(f"{t}params_hash", "not bound")],
                        ["Git commit", tags.get(f"{t}git.commit", "none")],
                        ["Uncommitted changes", tags.get(f"{t}git.dirty", "unknown")],
                    ],
                )
            ],
        )
    )

    datasets = [d for d in tags.get(f"{t}datasets", "").split(",") if d]
    rows = []
    for name in datasets:
        key = tracking._tag_key(name)
        rows.append(
            [
                name,
                tags.get(f"{t}data.{key}.kind", ""),
                tags.get(f"{t}data.{key}.dvc_md5", "none"),
                tags.get(f"{t}quality.{key}", "none"),
                tags.get(f"{t}quality.{key}.sha256", ""),
                tags.get(f"{t}quality.{key}.data_match", ""),
            ]
        )
    data_blocks: list[Any] = [
        ("table", ["dataset", "kind", "DVC md5", "quality", "quality evidence sha256", "same data"], rows)
        if rows
        else "No datasets were declared for this run."
    ]
    key_ids = json.loads(tags.get(f"{t}pseudonymisation.key_ids", "{}") or "{}")
    if key_ids:
        data_blocks.append("Pseudonymisation key ids: " + ", ".join(f"{d}: {k}" for d, k in key_ids.items()))
    sections.append(("Data and data quality", data_blocks))

    sections.append(
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
        )
    )

    fairness = _artifact_json(client, run_id, "reports/fairness.json")
    sections.append(("Fairness", _fairness_blocks(fairness)))

    versions = json.loads(tags.get(f"{t}versions", "{}") or "{}")
    sections.append(("Software", [("table", ["package", "version"], [[k, v] for k, v in sorted(versions.items())])]))

    limits = []
    if not official:
        limits.append("Exploratory: not approved for use on real or personal data.")
    if tags.get(f"{t}git.dirty") == "true":
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
        q = tags.get(f"{t}quality.{tracking._tag_key(name)}", "none")
        if not q.startswith("passed"):
            limits.append(f"Dataset {name}: quality result is '{q}'.")
    sections.append(("Limitations and warnings", limits or ["None recorded."]))
    return title, sections


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
    log: bool = False,
    config=None,
    case: Case | None = None,
    run=None,
) -> dict[str, Path]:
    """Write ``model-card.md`` and ``model-card.html``; with ``log`` also as run artefacts."""
    from idsp.config import load_config
    from idsp.files import atomic_write

    config = config or load_config()
    if case is None:
        from idsp.case import Case
        from idsp.errors import CaseError

        try:
            case = Case.open()
        except CaseError:
            case = None
    title, sections = build(run_id, config=config, case=case)
    folder = Path(output) if output else Path(tempfile.mkdtemp(prefix="idsp-model-card-"))
    md_path, html_path = folder / "model-card.md", folder / "model-card.html"
    atomic_write(md_path, to_markdown(title, sections))
    atomic_write(html_path, to_html(title, sections))
    if log:
        if run is not None:
            run.log_artifact(md_path, "model_card")
            run.log_artifact(html_path, "model_card")
        else:
            from idsp import tracking

            tracking.check_file(md_path)
            client = tracking._client(tracking.tracking_uri(config))
            client.log_artifact(run_id, str(md_path), "model_card")
            client.log_artifact(run_id, str(html_path), "model_card")
    return {"markdown": md_path, "html": html_path}
