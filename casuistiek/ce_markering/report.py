"""The one-page HTML report of a CE-marking case: plots and findings in plain language.

Rule: the report only shows what the pipeline's JSON reports say (``evaluation``,
``fairness``, ``train``, ``features``); every finding is a sentence built from those
numbers, with its interval, so the page and the evidence never disagree. It is one
self-contained file (plots inlined as PNG), readable by a reviewer without tools.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any

DIM_LABEL = {
    "operator_legal_form": "legal form",
    "operator_size_class": "size class",
    "operator_country_region": "operator country",
}


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f} %"


def _ci(ci) -> str:
    if not ci or ci[0] is None:
        return ""
    return f" (95 % interval {ci[0]:.2f}-{ci[1]:.2f})"


def findings(evaluation: dict[str, Any], fairness: dict[str, Any], train: dict[str, Any]) -> list[str]:
    """The findings, most important first, as plain sentences."""
    at = evaluation["at_capacity"]
    out = [
        f"At a capacity of {_pct(at['capacity'])} of cases, the model's selection would find non-compliance in "
        f"{_pct(at['model_hit_rate'])} of inspections, against {_pct(at['random_arm_hit_rate'])} for a random "
        f"selection: {at['lift']:.2f} times as many{_ci(at['lift_ci'])}. Read on the {at['n_random_arm']} "
        f"random-arm inspections of {evaluation['test_year']}, the only unbiased labels."
        if at["lift"] is not None else "The random arm is too small to estimate the hit rate at capacity."
    ]
    for source, who in (("model", "The model"), ("process", "The historic selection process (all routes)")):
        for dim, label in DIM_LABEL.items():
            groups = fairness["selection"][source][dim]["by_group"]
            big = {k: v for k, v in groups.items() if not v["small_group"] and v["standardised_ratio"] is not None}
            if not big:
                continue
            for top, row in sorted(big.items(), key=lambda kv: -kv[1]["standardised_ratio"]):
                lo = row["standardised_ratio_ci"][0]
                if lo is not None and lo > 1 / fairness["params"]["ratio_threshold"]:
                    out.append(
                        f"{who} selects {label} '{top}' {row['standardised_ratio']:.2f} times as often as its mix "
                        f"of product categories predicts{_ci(row['standardised_ratio_ci'])}."
                    )
    for dim, label in DIM_LABEL.items():
        r = fairness["random_arm"][dim]
        rows = [g for g in r["by_group"] if not g["small_group"] and g["found_vs_predicted"] is not None]
        if not rows:
            continue
        low = min(rows, key=lambda g: g["found_vs_predicted"])
        if low["found_vs_predicted_ci"][1] is not None and low["found_vs_predicted_ci"][1] < 1:
            out.append(
                f"Outcome test by {label}: on the random arm, '{low['group']}' shows {low['found_vs_predicted']:.2f} "
                f"times the non-compliance the model predicts for it{_ci(low['found_vs_predicted_ci'])}; the model "
                "over-states this group's risk."
            )
    for feature, dims in (fairness.get("proxy_ablation") or {}).items():
        for dim, groups in dims.items():
            for name, v in groups.items():
                if v["with"] and v["without"] is not None and v["with"] > 1.25 and v["with"] - v["without"] > 0.2:
                    out.append(
                        f"Proxy: without the feature {feature}, the model would select {DIM_LABEL[dim]} '{name}' "
                        f"{v['without']:.2f} times as often as its product mix predicts, instead of {v['with']:.2f}."
                    )
    t = fairness["triggers"]
    out.append(
        f"{t['count']} fairness review trigger(s) fired (ratio below {t['thresholds']['ratio_below']} or difference "
        f"above {t['thresholds']['difference_above']}). Each needs a justification test in the checklist "
        "(ce.rechtvaardigingstoets) before a run on real data; a trigger is a question to answer, not a verdict."
        if t["count"] else "No fairness review trigger fired."
    )
    return out


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def plot_selection(fairness: dict[str, Any]) -> str:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for ax, (dim, label) in zip(axes, DIM_LABEL.items(), strict=True):
        names = sorted(fairness["selection"]["model"][dim]["by_group"])
        x = np.arange(len(names))
        for off, source, color in ((-0.2, "model", "#1f5f8b"), (0.2, "process", "#c77c11")):
            rows = [fairness["selection"][source][dim]["by_group"][n] for n in names]
            v = np.array([r["standardised_ratio"] or np.nan for r in rows], dtype=float)
            lo = np.array([r["standardised_ratio_ci"][0] if r["standardised_ratio_ci"][0] is not None else np.nan for r in rows])
            hi = np.array([r["standardised_ratio_ci"][1] if r["standardised_ratio_ci"][1] is not None else np.nan for r in rows])
            err = np.vstack([np.clip(v - lo, 0, None), np.clip(hi - v, 0, None)])
            ax.bar(x + off, v, width=0.4, yerr=np.nan_to_num(err), capsize=3, color=color, label=source)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.axhline(1 / fairness["params"]["ratio_threshold"], color="#b00020", linestyle="--", linewidth=0.8)
        ax.set_xticks(x)
        ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
        ax.set_title(f"by {label}")
        ax.set_ylabel("selected / expected from product mix")
    axes[0].legend(fontsize=8)
    fig.suptitle("Selection rate per group within product category (1 = as expected; bars: 95 % intervals)", fontsize=10)
    fig.tight_layout()
    return _png(fig)


def plot_calibration(evaluation: dict[str, Any]) -> str:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    cal = evaluation["calibration"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    pred = [r["predicted"] for r in cal["bins"]]
    obs = [r["observed"] for r in cal["bins"]]
    a.plot([0, 1], [0, 1], color="grey", linewidth=0.8)
    a.plot(pred, obs, marker="o", color="#1f5f8b")
    a.set_xlabel("predicted risk")
    a.set_ylabel("non-compliance found (random arm)")
    a.set_title(f"Calibration on the random arm (ECE {cal['ece']:.3f})")
    groups = cal.get("by_group", {})
    names = sorted(groups)
    b.bar([n for n in names], [groups[n]["predicted"] for n in names], width=0.4, align="edge", label="predicted", color="#1f5f8b")
    b.bar([n for n in names], [groups[n]["observed"] for n in names], width=-0.4, align="edge", label="found", color="#c77c11")
    b.set_title("by legal form (random arm)")
    b.tick_params(axis="x", labelrotation=30, labelsize=8)
    b.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def plot_capacity(evaluation: dict[str, Any]) -> str:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    curve = [r for r in evaluation["curve"] if r["hit_rate"] is not None]
    at = evaluation["at_capacity"]
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    ax.plot([100 * r["capacity"] for r in curve], [r["hit_rate"] for r in curve], marker="o", color="#1f5f8b", label="model")
    base = at["random_arm_hit_rate"]
    lo, hi = at["random_arm_hit_rate_ci"]
    ax.axhline(base, color="#c77c11", label="random selection")
    if lo is not None:
        ax.axhspan(lo, hi, color="#c77c11", alpha=0.15)
    ax.axvline(100 * at["capacity"], color="grey", linestyle=":", label="capacity")
    ax.set_xscale("log")
    ax.set_xlabel("capacity: % of cases inspected on the model's advice")
    ax.set_ylabel("hit rate (random arm)")
    ax.set_title("Hit rate against capacity")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222;line-height:1.45}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left}
.note{color:#555;font-size:.9em}img{max-width:100%}li{margin:.3em 0}"""


def render(case, *, evaluation: dict, fairness: dict, train: dict, features: dict) -> str:
    e = html.escape
    spec = case.spec
    items = "".join(f"<li>{e(s)}</li>" for s in findings(evaluation, fairness, train))
    hits = "".join(
        f"<tr><td><code>{e(h['id'])}</code></td><td>{e(str(h['value']))} {e(h['rule'])}</td><td>{e(h['detail'])}</td></tr>"
        for h in fairness["triggers"]["hits"]
    ) or "<tr><td colspan=3>none</td></tr>"
    feats = "".join(
        f"<tr><td><code>{e(f['name'])}</code></td><td>{e(f['rationale'])}</td><td>{e(f['proxy'])}</td></tr>"
        for f in features["features"]
    )
    synthetic = all(d.synthetic and not d.personal_data for d in spec.datasets if d.name == "ce_cases")
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>{e(spec.zaaknummer)} risk selection CE marking</title><style>{CSS}</style></head><body>
<h1>{e(spec.title)}: risk-based selection for CE-marking inspections</h1>
<p class="note">Case {e(spec.id)}, zaaknummer {e(spec.zaaknummer)}, {e(", ".join(spec.inspectorates))}. Test period
{evaluation["test_year"]}: {evaluation["n_test"]} cases, {fairness["random_arm"]["n"]} of them inspected in the random arm.
{"The data are synthetic: runs are exploratory and every finding is about the method, not about real operators." if synthetic else ""}
The model output is a priority list for inspectors, not a decision.</p>
<h2>Findings</h2><ul>{items}</ul>
<h2>Selection rate per group, within product category</h2>
<img alt="selection per group" src="data:image/png;base64,{plot_selection(fairness)}">
<p class="note">Model: the cases the model would select at capacity. Process: every case actually selected
(model, random arm, complaints, alerts, customs, manual choice). Red line: the review trigger (ratio {fairness["params"]["ratio_threshold"]}).</p>
<h2>Hit rate against capacity</h2><img alt="hit rate against capacity" src="data:image/png;base64,{plot_capacity(evaluation)}">
<h2>Calibration</h2><img alt="calibration" src="data:image/png;base64,{plot_calibration(evaluation)}">
<h2>Review triggers ({fairness["triggers"]["count"]})</h2>
<table><tr><th>trigger</th><th>value</th><th>what it means</th></tr>{hits}</table>
<p class="note">{e(fairness["triggers"]["demands"])}.</p>
<h2>Features and their rationale</h2>
<table><tr><th>feature</th><th>why it indicates risk</th><th>proxy review</th></tr>{feats}</table>
<p class="note">Checks: {e(str(features["checks"]))}. Training: {train.get("n_train")} inspected cases up to
{train["params"]["train_until"]}; validation ROC AUC {train.get("validate_roc_auc")}.</p>
</body></html>
"""
