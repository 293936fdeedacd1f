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


def _counts(y_true, y_pred):
    import numpy as np

    t = np.asarray(y_true, dtype=bool)
    p = np.asarray(y_pred, dtype=bool)
    tp = int(np.count_nonzero(t & p))
    fp = int(np.count_nonzero(~t & p))
    fn = int(np.count_nonzero(t & ~p))
    return tp, fp, fn, len(t) - tp - fp - fn


def _ratio(a: int, b: int) -> float:
    return a / b if b else float("nan")


# Plain-numpy versions of fairlearn's/scikit-learn's rate functions (same definitions):
# MetricFrame's bootstrap calls every metric n_boot x groups times, and sklearn's input
# validation made 50 resamples of 2,000 rows take 35 s on the 2-core build machine.
def selection_rate(y_true, y_pred) -> float:
    tp, fp, fn, tn = _counts(y_true, y_pred)
    return _ratio(tp + fp, tp + fp + fn + tn)


def precision(y_true, y_pred) -> float:
    tp, fp, _, _ = _counts(y_true, y_pred)
    return (tp / (tp + fp)) if tp + fp else 0.0  # sklearn's zero_division=0


def false_positive_rate(y_true, y_pred) -> float:
    _, fp, _, tn = _counts(y_true, y_pred)
    return _ratio(fp, fp + tn)


def false_negative_rate(y_true, y_pred) -> float:
    tp, _, fn, _ = _counts(y_true, y_pred)
    return _ratio(fn, fn + tp)


def true_positive_rate(y_true, y_pred) -> float:
    tp, _, fn, _ = _counts(y_true, y_pred)
    return _ratio(tp, tp + fn)


def count(y_true, y_pred) -> int:
    return len(y_true)


def _metric_functions() -> dict[str, Any]:
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
    from fairlearn.metrics import MetricFrame

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
    # Point estimates from MetricFrame; intervals from one numpy bootstrap below (MetricFrame's
    # own n_boot rebuilds a pandas MetricFrame per resample: 50 resamples took 16 s here).
    mf = MetricFrame(metrics=_metric_functions(), y_true=y_true, y_pred=y_pred, sensitive_features=sens)
    by_group = mf.by_group
    group_ci, intervals = (
        _bootstrap(y_true, y_pred, sens, n_boot, quantiles, random_state) if n_boot else ({}, {})
    )
    groups = []
    for key in by_group.index:
        values = key if isinstance(key, tuple) else (key,)
        label = dict(zip(sens.columns, values, strict=True))
        n = int(by_group.loc[key, "n"])
        row: dict[str, Any] = {"group": {k: str(v) for k, v in label.items()}, "n": n}
        ci = group_ci.get("|".join(str(v) for v in values), {})
        for m in METRICS:
            row[m] = _num(by_group.loc[key, m])
            if n_boot:
                row[f"{m}_ci"] = ci.get(m, [None, None])
        row["small_group"] = n < min_group_size
        groups.append(row)

    disparities = _disparities(y_true, y_pred, sens)
    report: dict[str, Any] = {
        "method": "fairlearn MetricFrame per group; percentile bootstrap intervals (cases resampled with replacement)",
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


def _disparities(y_true, y_pred, sens) -> dict[str, float | None]:
    from fairlearn.metrics import (
        demographic_parity_difference,
        demographic_parity_ratio,
        equalized_odds_difference,
    )

    sens_arg = sens if sens.shape[1] > 1 else sens.iloc[:, 0]
    disparities = {
        "demographic_parity_difference": _num(demographic_parity_difference(y_true, y_pred, sensitive_features=sens_arg)),
        "demographic_parity_ratio": _num(demographic_parity_ratio(y_true, y_pred, sensitive_features=sens_arg)),
        "equalized_odds_difference": _num(
            equalized_odds_difference(y_true, y_pred, sensitive_features=sens_arg, agg="worst_case")
        ),
    }
    disparities["selection_rate_ratio"] = disparities["demographic_parity_ratio"]
    return disparities


def _bootstrap(y_true, y_pred, sens, n_boot: int, quantiles: list[float], seed: int):
    """Percentile intervals per group and metric, and of the three disparities."""
    import numpy as np

    rng = np.random.default_rng(seed)
    labels = sens.astype(str).agg("|".join, axis=1).to_numpy()
    codes, uniques = _factorize(labels)
    k = len(uniques)
    n = len(y_true)
    per_group = {m: np.full((n_boot, k), np.nan) for m in METRICS}
    samples = {name: np.full(n_boot, np.nan) for name in HEADLINE}
    with np.errstate(divide="ignore", invalid="ignore"):
        for b in range(n_boot):
            idx = rng.integers(0, n, n)
            g, t, p = codes[idx], y_true[idx], y_pred[idx]
            size = np.bincount(g, minlength=k).astype(float)
            pos = np.bincount(g, weights=t, minlength=k)
            sel = np.bincount(g, weights=p, minlength=k)
            tp = np.bincount(g, weights=t * p, minlength=k)
            fp = sel - tp
            neg = size - pos
            rate = np.where(size > 0, sel / size, np.nan)
            tpr = np.where(pos > 0, tp / pos, np.nan)
            fpr = np.where(neg > 0, fp / neg, np.nan)
            per_group["selection_rate"][b] = rate
            per_group["precision"][b] = np.where(sel > 0, tp / sel, np.where(size > 0, 0.0, np.nan))
            per_group["false_positive_rate"][b] = fpr
            per_group["false_negative_rate"][b] = np.where(pos > 0, 1 - tpr, np.nan)
            per_group["true_positive_rate"][b] = tpr
            present = rate[size > 0]
            samples["demographic_parity_difference"][b] = np.nanmax(present) - np.nanmin(present)
            top = np.nanmax(present)
            samples["demographic_parity_ratio"][b] = np.nanmin(present) / top if top > 0 else np.nan
            samples["equalized_odds_difference"][b] = max(
                np.nanmax(tpr) - np.nanmin(tpr), np.nanmax(fpr) - np.nanmin(fpr)
            )

    def bounds(values):
        values = values[~np.isnan(values)]
        return [_num(np.quantile(values, q)) for q in quantiles] if len(values) else [None] * len(quantiles)

    group_ci = {
        str(label): {m: bounds(per_group[m][:, j]) for m in METRICS} for j, label in enumerate(uniques)
    }
    return group_ci, {name: bounds(v) for name, v in samples.items()}


def _factorize(labels):
    import numpy as np

    uniques, codes = np.unique(labels, return_inverse=True)
    return codes, uniques


def _conditional(y_true, y_pred, sens, ctrl, min_group_size: int) -> list[dict[str, Any]]:
    """Selection-rate disparity within each control level (e.g. per product category)."""
    import numpy as np
    from fairlearn.metrics import MetricFrame

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
