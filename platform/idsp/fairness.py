"""Fairness of a selection model per group, with bootstrap intervals (fairlearn MetricFrame).

Rule: every number comes with its uncertainty and its group size; groups smaller than
``min_group_size`` are reported but flagged, never silently dropped or merged. Selection
disparity is given unconditionally and, with ``control`` (e.g. product category), within
each control level, so a difference in risk mix is not read as discrimination.
"""

from __future__ import annotations

from typing import Any

METRICS = ("selection_rate", "precision", "false_positive_rate", "false_negative_rate", "true_positive_rate")
HEADLINE = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
)


def _metric_functions() -> dict[str, Any]:
    from fairlearn.metrics import (
        count,
        false_negative_rate,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )
    from sklearn.metrics import precision_score

    def precision(y_true, y_pred):
        return precision_score(y_true, y_pred, zero_division=0)

    return {
        "selection_rate": selection_rate,
        "precision": precision,
        "false_positive_rate": false_positive_rate,
        "false_negative_rate": false_negative_rate,
        "true_positive_rate": true_positive_rate,
        "n": count,
    }


def _frame(values, name: str):
    import pandas as pd

    if isinstance(values, pd.DataFrame):
        return values.reset_index(drop=True)
    if isinstance(values, pd.Series):
        return values.reset_index(drop=True).to_frame(values.name or name)
    return pd.Series(list(values)).to_frame(name)


def _num(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return None if v != v else round(v, 6)  # NaN -> None


def compute(
    y_true,
    y_pred,
    sensitive,
    control=None,
    *,
    n_boot: int = 200,
    ci_quantiles: tuple[float, float] = (0.025, 0.975),
    random_state: int = 0,
    min_group_size: int = 30,
) -> dict[str, Any]:
    """The fairness report as a JSON-ready dict (see ``docs/quality-and-tracking.md``)."""
    import numpy as np
    from fairlearn import __version__ as fairlearn_version
    from fairlearn.metrics import (
        MetricFrame,
        demographic_parity_difference,
        demographic_parity_ratio,
        equalized_odds_difference,
    )

    y_true = np.asarray(y_true).astype(int)
    y_pred = np.asarray(y_pred).astype(int)
    sens = _frame(sensitive, "group")
    ctrl = _frame(control, "control") if control is not None else None
    if not (len(y_true) == len(y_pred) == len(sens)) or (ctrl is not None and len(ctrl) != len(sens)):
        from idsp.errors import UserError

        raise UserError(
            "y_true, y_pred, sensitive (and control) must have the same length",
            fix="Pass one value per case for each of them",
        )
    quantiles = list(ci_quantiles)
    mf = MetricFrame(
        metrics=_metric_functions(),
        y_true=y_true,
        y_pred=y_pred,
        sensitive_features=sens,
        n_boot=n_boot or None,
        ci_quantiles=quantiles if n_boot else None,
        random_state=random_state,
    )
    by_group = mf.by_group
    ci_low, ci_high = (mf.by_group_ci[0], mf.by_group_ci[-1]) if n_boot else (None, None)
    groups = []
    for key in by_group.index:
        label = dict(zip(sens.columns, key if isinstance(key, tuple) else (key,), strict=True))
        row = {"group": {k: str(v) for k, v in label.items()}, "n": int(by_group.loc[key, "n"])}
        for m in METRICS:
            row[m] = _num(by_group.loc[key, m])
            if ci_low is not None:
                row[f"{m}_ci"] = [_num(ci_low.loc[key, m]), _num(ci_high.loc[key, m])]
        row["small_group"] = row["n"] < min_group_size
        groups.append(row)

    sens_arg = sens if sens.shape[1] > 1 else sens.iloc[:, 0]
    disparities = {
        "demographic_parity_difference": _num(demographic_parity_difference(y_true, y_pred, sensitive_features=sens_arg)),
        "demographic_parity_ratio": _num(demographic_parity_ratio(y_true, y_pred, sensitive_features=sens_arg)),
        "equalized_odds_difference": _num(
            equalized_odds_difference(y_true, y_pred, sensitive_features=sens_arg, agg="worst_case")
        ),
    }
    disparities["selection_rate_ratio"] = disparities["demographic_parity_ratio"]
    intervals = _bootstrap(y_true, y_pred, sens_arg, n_boot, quantiles, random_state) if n_boot else {}

    report: dict[str, Any] = {
        "method": "fairlearn MetricFrame per group; bootstrap percentile intervals",
        "fairlearn_version": fairlearn_version,
        "n": int(len(y_true)),
        "n_boot": int(n_boot),
        "ci_quantiles": quantiles,
        "min_group_size": min_group_size,
        "sensitive_features": [str(c) for c in sens.columns],
        "control_features": [str(c) for c in ctrl.columns] if ctrl is not None else [],
        "overall": {m: _num(mf.overall[m]) for m in METRICS} | {"n": int(len(y_true))},
        "by_group": groups,
        "disparities": disparities,
        "disparity_ci": intervals,
        "small_groups": [g["group"] for g in groups if g["small_group"]],
    }
    if ctrl is not None:
        report["conditional"] = _conditional(y_true, y_pred, sens, ctrl, min_group_size)
    return report


def _bootstrap(y_true, y_pred, sens, n_boot: int, quantiles: list[float], seed: int) -> dict[str, list]:
    """Percentile intervals of the three disparities, resampling cases with replacement."""
    import numpy as np

    rng = np.random.default_rng(seed)
    labels = sens.astype(str).agg("|".join, axis=1).to_numpy() if hasattr(sens, "columns") else np.asarray(sens).astype(str)
    codes, _ = _factorize(labels)
    k = codes.max() + 1
    samples = {name: [] for name in HEADLINE}
    n = len(y_true)
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        g, t, p = codes[idx], y_true[idx], y_pred[idx]
        size = np.bincount(g, minlength=k)
        sel = np.bincount(g, weights=p, minlength=k)
        pos = np.bincount(g, weights=t, minlength=k)
        neg = size - pos
        tp = np.bincount(g, weights=t * p, minlength=k)
        fp = np.bincount(g, weights=(1 - t) * p, minlength=k)
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = np.where(size > 0, sel / size, np.nan)
            tpr = np.where(pos > 0, tp / pos, np.nan)
            fpr = np.where(neg > 0, fp / neg, np.nan)
        present = size > 0
        r = rate[present]
        samples["demographic_parity_difference"].append(np.nanmax(r) - np.nanmin(r))
        samples["demographic_parity_ratio"].append(np.nanmin(r) / np.nanmax(r) if np.nanmax(r) > 0 else np.nan)
        samples["equalized_odds_difference"].append(
            max(np.nanmax(tpr) - np.nanmin(tpr), np.nanmax(fpr) - np.nanmin(fpr))
        )
    return {name: [_num(np.nanquantile(v, q)) for q in quantiles] for name, v in samples.items()}


def _factorize(labels):
    import numpy as np

    uniques, codes = np.unique(labels, return_inverse=True)
    return codes, uniques


def _conditional(y_true, y_pred, sens, ctrl, min_group_size: int) -> list[dict[str, Any]]:
    """Selection-rate disparity within each control level (e.g. per product category)."""
    import numpy as np
    from fairlearn.metrics import MetricFrame, count, selection_rate

    mf = MetricFrame(
        metrics={"selection_rate": selection_rate, "n": count},
        y_true=y_true,
        y_pred=y_pred,
        sensitive_features=sens,
        control_features=ctrl,
    )
    diff = mf.difference(method="between_groups")["selection_rate"]
    ratio = mf.ratio(method="between_groups")["selection_rate"]
    sizes = mf.by_group["n"]
    out = []
    for level in diff.index:
        key = level if isinstance(level, tuple) else (level,)
        smallest = int(np.nanmin(sizes.loc[level].to_numpy())) if len(key) == 1 else None
        out.append(
            {
                "control": {str(c): str(v) for c, v in zip(ctrl.columns, key, strict=True)},
                "selection_rate_difference": _num(diff.loc[level]),
                "selection_rate_ratio": _num(ratio.loc[level]),
                "smallest_group_n": smallest,
                "small_group": smallest is not None and smallest < min_group_size,
            }
        )
    return out


def headline_metrics(report: dict[str, Any]) -> dict[str, float]:
    """The disparities (and their interval bounds) as MLflow metric name -> value."""
    out = {}
    for name, value in report["disparities"].items():
        if value is not None:
            out[f"fairness.{name}"] = value
    for name, (low, high) in report.get("disparity_ci", {}).items():
        if low is not None:
            out[f"fairness.{name}.ci_low"] = low
        if high is not None:
            out[f"fairness.{name}.ci_high"] = high
    return out


def plot(report: dict[str, Any]):
    """Bars per group for selection rate, precision, FPR and FNR with their intervals."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import numpy as np

    shown = ("selection_rate", "precision", "false_positive_rate", "false_negative_rate")
    groups = report["by_group"]
    labels = [" / ".join(g["group"].values()) + f"\n(n={g['n']})" for g in groups]
    fig, axes = plt.subplots(1, len(shown), figsize=(4 * len(shown), 3.6), sharey=True)
    x = np.arange(len(groups))
    for ax, metric in zip(axes, shown, strict=True):
        values = np.array([g[metric] if g[metric] is not None else np.nan for g in groups], dtype=float)
        err = None
        if groups and f"{metric}_ci" in groups[0]:
            lo = np.array([g[f"{metric}_ci"][0] if g[f"{metric}_ci"][0] is not None else np.nan for g in groups])
            hi = np.array([g[f"{metric}_ci"][1] if g[f"{metric}_ci"][1] is not None else np.nan for g in groups])
            err = np.vstack([np.clip(values - lo, 0, None), np.clip(hi - values, 0, None)])
        colors = ["#b0b0b0" if g["small_group"] else "#1f5f8b" for g in groups]
        ax.bar(x, values, yerr=err, color=colors, capsize=4)
        overall = report["overall"].get(metric)
        if overall is not None:
            ax.axhline(overall, color="#b00020", linewidth=1, linestyle="--")
        ax.set_title(metric.replace("_", " "))
        ax.set_xticks(x)
        ax.set_xticklabels(labels, fontsize=8)
        ax.set_ylim(0, 1)
    d = report["disparities"]
    fig.suptitle(
        f"Fairness by {', '.join(report['sensitive_features'])}: DP difference "
        f"{d['demographic_parity_difference']}, DP ratio {d['demographic_parity_ratio']}, "
        f"EO difference {d['equalized_odds_difference']} (grey: n < {report['min_group_size']})",
        fontsize=9,
    )
    fig.tight_layout()
    return fig
