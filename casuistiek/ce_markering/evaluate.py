"""Evaluation at inspection capacity and the fairness checks of the CE-marking case.

Rule: performance and error rates are read only on the random arm of the test period
(its labels are the only unbiased ones); selection rates are read over every case of the
test period, for the model at capacity and for the whole historic selection process
(model, reactive and manual routes), and compared within product category. Every rate
comes with a bootstrap interval and its group size; groups below ``min_group_n`` are
shown but not used to draw a conclusion. A review trigger (reference e.3: ratio below 0.8
or difference above 0.1; both configurable) never blocks by itself: it demands a
justification entry in the checklist (``ce.rechtvaardigingstoets``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from casuistiek.ce_markering import features as feats
from casuistiek.ce_markering import spec

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd

DIMENSIONS = ("operator_legal_form", "operator_size_class", "operator_country_region")
CAPACITY_GRID = (0.01, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5)


@dataclass(frozen=True)
class EvaluationParams:
    capacity: float = 0.04  # share of cases the model may select: 8 % inspected x 50 % for the model
    ratio_threshold: float = 0.8
    difference_threshold: float = 0.1
    min_group_n: int = 30
    n_boot: int = 200
    seed: int = 0
    calibration_bins: int = 10

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> EvaluationParams:
        data = dict(data or {})
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            from idsp.errors import UserError

            raise UserError(
                f"unknown evaluation parameter(s) {', '.join(unknown)}",
                where="params.yaml, ce_markering.evaluate",
                fix=f"Use only: {', '.join(cls.__dataclass_fields__)}",
            )
        return cls(**data)


def _r(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return None if v != v else round(v, 6)


def groups_of(frame: pd.DataFrame) -> pd.DataFrame:
    """The fairness groups of each case (never features)."""
    import pandas as pd

    return pd.DataFrame(
        {
            "operator_legal_form": frame["operator_legal_form"].astype(str).to_numpy(),
            "operator_size_class": frame["operator_size_class"].astype(str).to_numpy(),
            "operator_country_region": feats.region_of(frame["operator_country"].astype(str).to_numpy()),
        },
        index=frame.index,
    )


def _boot_rate(values: np.ndarray, n_boot: int, rng) -> list[float | None]:
    import numpy as np

    n = len(values)
    if n == 0:
        return [None, None]
    means = rng.binomial(n, values.mean(), n_boot) / n if n_boot else np.array([values.mean()])
    return [_r(np.quantile(means, 0.025)), _r(np.quantile(means, 0.975))]


def hit_rate_at_capacity(y: np.ndarray, score_r: np.ndarray, threshold: float, p: EvaluationParams, rng) -> dict[str, Any]:
    """Hit rate of the model's selection against the random arm's own hit rate, with intervals."""
    import numpy as np

    chosen = score_r >= threshold
    base = float(y.mean())
    hit = float(y[chosen].mean()) if chosen.any() else float("nan")
    lifts, hits, bases = [], [], []
    n = len(y)
    for _ in range(p.n_boot):
        idx = rng.integers(0, n, n)
        yy, cc = y[idx], chosen[idx]
        b = yy.mean()
        h = yy[cc].mean() if cc.any() else np.nan
        bases.append(b)
        hits.append(h)
        lifts.append(h / b if b > 0 else np.nan)

    def ci(v):
        return [_r(np.nanquantile(v, 0.025)), _r(np.nanquantile(v, 0.975))] if p.n_boot else [None, None]

    return {
        "capacity": p.capacity,
        "random_arm_hit_rate": _r(base), "random_arm_hit_rate_ci": ci(bases),
        "model_hit_rate": _r(hit), "model_hit_rate_ci": ci(hits),
        "lift": _r(hit / base if base > 0 else float("nan")), "lift_ci": ci(lifts),
        "n_random_arm": int(n), "n_random_arm_model_would_select": int(chosen.sum()),
    }  # fmt: skip


def capacity_curve(y: np.ndarray, score_r: np.ndarray, scores_all: np.ndarray) -> list[dict[str, Any]]:
    import numpy as np

    out = []
    for cap in CAPACITY_GRID:
        t = np.quantile(scores_all, 1 - cap)
        c = score_r >= t
        out.append({"capacity": cap, "n": int(c.sum()), "hit_rate": _r(y[c].mean()) if c.any() else None})
    return out


def calibration(y: np.ndarray, s: np.ndarray, bins: int, groups: pd.Series | None = None) -> dict[str, Any]:
    import numpy as np

    edges = np.unique(np.quantile(s, np.linspace(0, 1, bins + 1)))
    which = np.clip(np.searchsorted(edges, s, side="right") - 1, 0, len(edges) - 2)
    table = []
    ece = 0.0
    for b in range(len(edges) - 1):
        m = which == b
        if not m.any():
            continue
        pred, obs = float(s[m].mean()), float(y[m].mean())
        ece += abs(pred - obs) * m.sum() / len(y)
        table.append({"bin": b, "n": int(m.sum()), "predicted": _r(pred), "observed": _r(obs)})
    out: dict[str, Any] = {"bins": table, "ece": _r(ece), "brier": _r(np.mean((s - y) ** 2)), "n": int(len(y))}
    if groups is not None:
        g = groups.to_numpy()
        out["by_group"] = {
            str(k): {"n": int((g == k).sum()), "predicted": _r(s[g == k].mean()), "observed": _r(y[g == k].mean())}
            for k in sorted(set(g))
        }
    return out


def _codes(groups: pd.Series) -> tuple[np.ndarray, list[str]]:
    import numpy as np

    names, codes = np.unique(groups.astype(str).to_numpy(), return_inverse=True)
    return codes, [str(n) for n in names]


def _ci(samples, axis=0) -> Any:
    import warnings

    import numpy as np

    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: a group never selected
        return np.nanquantile(samples, 0.025, axis=axis), np.nanquantile(samples, 0.975, axis=axis)


def poisson_weights(n: int, n_boot: int, rng) -> np.ndarray:
    """Bootstrap weights (Poisson(1) per case and replicate), shared by every selection check."""
    import numpy as np

    return rng.poisson(1.0, (n_boot, n)).astype(np.uint8)


def selection_check(
    selected: np.ndarray, groups: pd.Series, category: pd.Series, p: EvaluationParams, rng, weights=None
) -> dict[str, Any]:
    """Selection rate per group (with intervals) and the disparity within product category."""
    import numpy as np

    g, names = _codes(groups)
    c, cats = _codes(category)
    k, sel = len(names), selected.astype(float)
    n_g = np.bincount(g, minlength=k)
    rate = np.bincount(g, weights=sel, minlength=k) / np.maximum(n_g, 1)
    # Category-standardised ratio: a group's selections against those it would get at the
    # selection rate of its product categories (indirect standardisation).
    cat_rate = np.bincount(c, weights=sel, minlength=len(cats)) / np.maximum(np.bincount(c, minlength=len(cats)), 1)
    expected = cat_rate[c]
    obs_g = np.bincount(g, weights=sel, minlength=k)
    exp_g = np.bincount(g, weights=expected, minlength=k)
    boot_obs, boot_exp = [], []
    if weights is None and p.n_boot:
        weights = poisson_weights(len(g), p.n_boot, rng)
    for w in weights if p.n_boot else ():  # Poisson bootstrap: one weight per case and replicate
        w = w.astype(float)
        boot_obs.append(np.bincount(g, weights=w * sel, minlength=k))
        boot_exp.append(np.bincount(g, weights=w * expected, minlength=k))
    by_group = {}
    if boot_obs:
        with np.errstate(all="ignore"):
            ratios = np.stack(boot_obs) / np.stack(boot_exp)
        lo, hi = _ci(ratios)
    else:
        lo = hi = np.full(k, np.nan)
    for i, name in enumerate(names):
        rate_ci = rng.binomial(n_g[i], rate[i], p.n_boot) / n_g[i] if p.n_boot and n_g[i] else None
        by_group[name] = {
            "n": int(n_g[i]), "selection_rate": _r(rate[i]),
            "selection_rate_ci": [_r(np.quantile(rate_ci, 0.025)), _r(np.quantile(rate_ci, 0.975))] if rate_ci is not None else [None, None],
            "standardised_ratio": _r(obs_g[i] / exp_g[i]) if exp_g[i] > 0 else None,
            "standardised_ratio_ci": [_r(lo[i]), _r(hi[i])],
            "small_group": bool(n_g[i] < p.min_group_n),
        }  # fmt: skip
    # Within each category: lowest against highest rate among groups large enough there.
    cell_n = np.bincount(c * k + g, minlength=len(cats) * k).reshape(len(cats), k)
    cell_s = np.bincount(c * k + g, weights=sel, minlength=len(cats) * k).reshape(len(cats), k)
    ratios_c, diffs, weights, skipped, per_category = [], [], [], [], []
    for j, cat in enumerate(cats):
        ok = cell_n[j] >= p.min_group_n
        if ok.sum() < 2:
            skipped.append(cat)
            continue
        r = cell_s[j][ok] / cell_n[j][ok]
        if r.max() <= 0:
            skipped.append(cat)
            continue
        ids = np.flatnonzero(ok)
        ratios_c.append(r.min() / r.max())
        diffs.append(r.max() - r.min())
        weights.append(cell_n[j].sum())
        per_category.append({"product_category": cat, "ratio": _r(r.min() / r.max()), "difference": _r(r.max() - r.min()),
                             "highest": names[ids[r.argmax()]], "lowest": names[ids[r.argmin()]], "groups": int(ok.sum())})  # fmt: skip
    big = n_g >= p.min_group_n
    return {
        "by_group": by_group,
        "within_category_ratio": _r(np.average(ratios_c, weights=weights)) if weights else None,
        "within_category_difference": _r(np.average(diffs, weights=weights)) if weights else None,
        "per_category": per_category,
        "categories_without_two_large_groups": skipped,
        "unconditional": {
            "ratio": _r(rate[big].min() / rate[big].max()) if big.sum() > 1 and rate[big].max() > 0 else None,
            "difference": _r(rate[big].max() - rate[big].min()) if big.sum() > 1 else None,
        },
    }


METRICS = ("selection_rate", "precision", "false_positive_rate", "false_negative_rate")


def group_metrics(y: np.ndarray, pred: np.ndarray, g: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """fairlearn's selection_rate, precision, FPR and FNR per group code (NaN where undefined)."""
    import numpy as np

    y, pred = y.astype(float), pred.astype(float)
    n = np.bincount(g, minlength=k).astype(float)
    sel = np.bincount(g, weights=pred, minlength=k)
    pos = np.bincount(g, weights=y, minlength=k)
    tp = np.bincount(g, weights=y * pred, minlength=k)
    fp = sel - tp
    with np.errstate(all="ignore"):
        return {
            "n": n,
            "selection_rate": np.where(n > 0, sel / n, np.nan),
            "precision": np.where(sel > 0, tp / sel, np.nan),
            "false_positive_rate": np.where(n - pos > 0, fp / (n - pos), np.nan),
            "false_negative_rate": np.where(pos > 0, (pos - tp) / pos, np.nan),
        }


def random_arm_check(
    y: np.ndarray, would: np.ndarray, score: np.ndarray, groups: pd.Series, p: EvaluationParams, rng
) -> dict[str, Any]:
    """The outcome test, hit-rate and error-rate parity of the model on the random arm.

    Outcome test: per group, the non-compliance found on the random arm against the risk
    the model predicted; a group whose predicted risk is far above what is found is
    over-selected. Hit rate (precision) needs ``min_group_n // 3`` selections in a group.
    """
    import numpy as np

    g, names = _codes(groups)
    k = len(names)
    point = group_metrics(y, would, g, k)
    n_g = np.bincount(g, minlength=k)
    obs = np.bincount(g, weights=y.astype(float), minlength=k)
    pred = np.bincount(g, weights=score, minlength=k)
    boots: dict[str, list[Any]] = {m: [] for m in (*METRICS, "found_vs_predicted")}
    for _ in range(p.n_boot):
        idx = rng.integers(0, len(g), len(g))
        b = group_metrics(y[idx], would[idx], g[idx], k)
        for m in METRICS:
            boots[m].append(b[m])
        with np.errstate(all="ignore"):
            boots["found_vs_predicted"].append(
                np.bincount(g[idx], weights=y[idx].astype(float), minlength=k) / np.bincount(g[idx], weights=score[idx], minlength=k)
            )
    ci = {m: _ci(np.array(v)) if p.n_boot else (np.full(k, np.nan),) * 2 for m, v in boots.items()}
    by_group = []
    selections = np.bincount(g, weights=would.astype(float), minlength=k)
    for i, name in enumerate(names):
        row: dict[str, Any] = {"group": name, "n": int(point["n"][i]), "small_group": bool(point["n"][i] < p.min_group_n),
               "selected": int(selections[i]), "found_rate": _r(obs[i] / n_g[i]) if n_g[i] else None,
               "predicted_rate": _r(pred[i] / n_g[i]) if n_g[i] else None,
               "found_vs_predicted": _r(obs[i] / pred[i]) if pred[i] > 0 else None}  # fmt: skip
        row["found_vs_predicted_ci"] = [_r(ci["found_vs_predicted"][0][i]), _r(ci["found_vs_predicted"][1][i])]
        for m in METRICS:
            row[m] = _r(point[m][i])
            row[f"{m}_ci"] = [_r(ci[m][0][i]), _r(ci[m][1][i])]
        by_group.append(row)
    big = [r for r in by_group if not r["small_group"]]
    outcome = [r["found_vs_predicted"] for r in big if r["found_vs_predicted"] is not None]
    prec = [r["precision"] for r in big if r["precision"] is not None and r["selected"] >= max(p.min_group_n // 3, 1)]
    fpr = [r["false_positive_rate"] for r in big if r["false_positive_rate"] is not None]
    fnr = [r["false_negative_rate"] for r in big if r["false_negative_rate"] is not None]
    return {
        "outcome_ratio": _r(min(outcome) / max(outcome)) if len(outcome) > 1 and max(outcome) > 0 else None,
        "hit_rate_ratio": _r(min(prec) / max(prec)) if len(prec) > 1 and max(prec) > 0 else None,
        "hit_rate_difference": _r(max(prec) - min(prec)) if len(prec) > 1 else None,
        "fpr_difference": _r(max(fpr) - min(fpr)) if len(fpr) > 1 else None,
        "fnr_difference": _r(max(fnr) - min(fnr)) if len(fnr) > 1 else None,
        "by_group": by_group,
    }


def triggers(result: dict[str, Any], p: EvaluationParams) -> dict[str, Any]:
    hits = []

    def hit(id_, check, value, op, threshold, detail):
        hits.append({"id": id_, "check": check, "value": value, "rule": f"{op} {threshold}", "detail": detail})

    for source, label in (("model", "the model at capacity"), ("process", "the whole historic selection process")):
        for dim in DIMENSIONS:
            s = result["selection"][source][dim]
            top = max(s["by_group"].items(), key=lambda kv: kv[1]["standardised_ratio"] or 0)
            detail = f"{label} selects {top[0]} {top[1]['standardised_ratio']}x as often as its product mix predicts"
            if s["within_category_ratio"] is not None and s["within_category_ratio"] < p.ratio_threshold:
                hit(f"selection.{source}.{dim}.ratio", f"selection rate ratio by {dim} within product category",
                    s["within_category_ratio"], "<", p.ratio_threshold, detail)
            if s["within_category_difference"] is not None and s["within_category_difference"] > p.difference_threshold:
                hit(f"selection.{source}.{dim}.difference", f"selection rate difference by {dim} within product category",
                    s["within_category_difference"], ">", p.difference_threshold, detail)
    for dim in DIMENSIONS:
        r = result["random_arm"][dim]
        if r["outcome_ratio"] is not None and r["outcome_ratio"] < p.ratio_threshold:
            low = min((g for g in r["by_group"] if not g["small_group"] and g["found_vs_predicted"] is not None),
                      key=lambda g: g["found_vs_predicted"])  # fmt: skip
            hit(f"random_arm.{dim}.outcome", f"non-compliance found against predicted, by {dim}, on the random arm",
                r["outcome_ratio"], "<", p.ratio_threshold,
                f"for {low['group']} the random arm finds {low['found_vs_predicted']}x the predicted non-compliance: "
                "the model over-states its risk (outcome test)")
        if r["hit_rate_ratio"] is not None and r["hit_rate_ratio"] < p.ratio_threshold:
            hit(f"random_arm.{dim}.hit_rate", f"hit rate ratio by {dim} on the random arm", r["hit_rate_ratio"], "<",
                p.ratio_threshold, "a group the model selects yields fewer findings: over-selection (outcome test)")
        for m in ("fpr", "fnr"):
            v = r[f"{m}_difference"]
            if v is not None and v > p.difference_threshold:
                hit(f"random_arm.{dim}.{m}", f"{m.upper()} difference by {dim} on the random arm", v, ">",
                    p.difference_threshold, "error rates differ between groups (equal performance lens)")
    return {"count": len(hits), "hits": hits,
            "thresholds": {"ratio_below": p.ratio_threshold, "difference_above": p.difference_threshold, "min_group_n": p.min_group_n},
            "demands": "a justification entry (ce.rechtvaardigingstoets) for every hit before a run on real data"}  # fmt: skip


def evaluate(
    frame: pd.DataFrame, scores: np.ndarray, p: EvaluationParams, *, test_year: int,
    ablation: dict[str, np.ndarray] | None = None, gen: dict | None = None,
) -> tuple[dict, dict]:
    """(evaluation, fairness) reports for the test year; ``scores`` are the model's for ``frame``.

    ``ablation`` maps a proxy feature to the scores of the same model trained without it:
    the report then shows each group's selection with and without that feature.
    """
    import numpy as np
    from sklearn.metrics import average_precision_score, roc_auc_score

    rng = np.random.default_rng(p.seed)
    year = frame["decision_date"].dt.year.to_numpy()
    test = year == test_year
    t = frame[test]
    s_all = scores[test]
    threshold = float(np.quantile(s_all, 1 - p.capacity))
    would = s_all >= threshold
    rnd = (t["case_source"] == "random_sample").to_numpy()
    y_r = t.loc[rnd, spec.TARGET].to_numpy(bool)
    s_r = s_all[rnd]
    g = groups_of(t)
    inspected = t["selected_for_inspection"].to_numpy(bool)
    serious = t.loc[rnd, "risk_level"].astype(str).isin(["serious", "high"]).to_numpy()
    evaluation: dict[str, Any] = {
        "test_year": test_year, "n_test": int(len(t)), "capacity": p.capacity, "threshold": _r(threshold),
        "at_capacity": hit_rate_at_capacity(y_r, s_r, threshold, p, rng),
        "curve": capacity_curve(y_r, s_r, s_all),
        "random_arm": {
            "n": int(rnd.sum()),
            "roc_auc": _r(roc_auc_score(y_r, s_r)) if len(set(y_r)) > 1 else None,
            "pr_auc": _r(average_precision_score(y_r, s_r)) if len(set(y_r)) > 1 else None,
            "recall_serious_high": _r(would[rnd][serious].mean()) if serious.any() else None,
            "n_serious_high": int(serious.sum()),
        },
        "calibration": calibration(y_r.astype(float), s_r, p.calibration_bins, g.loc[rnd, "operator_legal_form"]),
    }  # fmt: skip
    result: dict[str, Any] = {
        "schema": "ce_markering.fairness/1",
        "test_year": test_year,
        "params": asdict(p),
        "method": "selection rates over all cases of the test year, compared within product category; "
        "hit and error rates on the random arm only (fairlearn MetricFrame); bootstrap percentile intervals",
        "selection": {"model": {}, "process": {}},
        "random_arm": {
            "n": int(rnd.sum()),
            "share_of_inspections": _r(rnd.sum() / max(inspected.sum(), 1)),
            "smallest_group_n": None,
        },
        "calibration": {"ece": evaluation["calibration"]["ece"], "by_group": evaluation["calibration"]["by_group"]},
    }
    weights = poisson_weights(len(t), p.n_boot, rng) if p.n_boot else None
    for dim in DIMENSIONS:
        groups = g[dim].rename(dim)
        result["selection"]["model"][dim] = selection_check(would, groups, t["product_category"], p, rng, weights)
        result["selection"]["process"][dim] = selection_check(inspected, groups, t["product_category"], p, rng, weights)
        result["random_arm"][dim] = random_arm_check(y_r, would[rnd], s_r, groups[rnd], p, rng)
    for feature, other in (ablation or {}).items():
        o = other[test]
        o_would = o >= np.quantile(o, 1 - p.capacity)
        quick = EvaluationParams(**{**asdict(p), "n_boot": 0})
        result.setdefault("proxy_ablation", {})[feature] = {
            dim: {
                name: {"with": result["selection"]["model"][dim]["by_group"][name]["standardised_ratio"], "without": row["standardised_ratio"]}
                for name, row in selection_check(o_would, g[dim].rename(dim), t["product_category"], quick, rng)["by_group"].items()
            }
            for dim in DIMENSIONS
        }  # fmt: skip
    sizes = [grp["n"] for dim in DIMENSIONS for grp in result["random_arm"][dim]["by_group"]]
    result["random_arm"]["smallest_group_n"] = int(min(sizes)) if sizes else 0
    result["triggers"] = triggers(result, p)
    if gen:
        result["generation"] = {k: gen[k] for k in ("rows", "seed") if k in gen}
    return evaluation, result
