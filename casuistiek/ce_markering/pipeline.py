"""The stages of a CE-marking case, as ``dvc repro`` runs them: generate, validate, train, evaluate, report.

Rule: every stage reads its settings from the case's ``params.yaml`` (section
``ce_markering``) and its inputs from files, writes its outputs to fixed paths in the case
(the ones ``dvc.yaml`` declares), and writes JSON deterministically (sorted keys, no
timestamps), so the same data, code and parameters give byte-identical reports — which is
what lets a reviewer's hash of ``reports/fairness.json`` stay valid. Train, evaluate and
report are gated, tracked MLflow runs (``case.run``): exploratory on synthetic data, held
by the gate on real data until the checklist is approved.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
from pathlib import Path
from typing import Any

from idsp.errors import IdspError, UserError, tracking_login_refused

DATASET = "ce_cases"
MODEL = "models/ce_model.pkl"
FEATURES = "reports/features.json"
GENERATION = "reports/generation.json"
QUALITY = "reports/quality.json"
TRAIN = "reports/train.json"
EVALUATION = "reports/evaluation.json"
FAIRNESS = "reports/fairness.json"
REPORT = "reports/ce_report.html"


def load_params(case) -> dict[str, Any]:
    import yaml

    path = Path(case.root) / "params.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"cannot read the parameters ({exc})", where=str(path), fix="Fix params.yaml") from None
    section = data.get("ce_markering")
    if not isinstance(section, dict):
        raise UserError(
            "no `ce_markering:` section", where=str(path),
            fix="Add the section from the IDSP case template (idsp case new --type ce_markering)",
        )
    return section


def write_json(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    return path


def _dataset(case, params) -> str:
    return str(params.get("dataset", DATASET))


def _flat(prefix: str, data: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in data.items():
        out[f"{prefix}.{k}"] = json.dumps(v) if isinstance(v, (list, dict, tuple)) else v
    return out


def _purpose(cfg) -> str:
    """``purpose:`` in the ``ce_markering`` params: "use" (default), or "development" for
    the first pass on real data, under an approval for development (no model registered)."""
    purpose = str(cfg.get("purpose", "use"))
    if purpose not in ("development", "use"):
        raise UserError(f"ce_markering.purpose is {purpose!r}", where="params.yaml",
                        fix="Set it to development or use")
    return purpose


def _run(case, cfg, name: str, **kw):
    """A gated MLflow run, or a no-op stand-in when ``track: false`` (offline notebooks).

    ``case.run`` asks ``legal_ethics.gate.check`` — the function ``idsp ethics verify``
    asks, the quality evidence included — so a stage refuses exactly what verify refuses.
    """
    if cfg.get("track", True):
        return case.run(name, datasets=[_dataset(case, cfg)], purpose=_purpose(cfg), **kw)
    return _Untracked()


class _Untracked:
    official = False
    run_id = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __getattr__(self, name):
        return lambda *a, **k: None


# -- stages ----------------------------------------------------------------------------------


def generate(case, params) -> dict[str, Any]:
    from idsp.data import write_table

    from casuistiek.ce_markering import generate as gen
    from casuistiek.ce_markering import spec

    p = gen.GenerationParams.from_dict(params.get("generate"))
    frame = gen.generate(p)
    write_table(frame, case.dataset_path(_dataset(case, params)))
    inspected = frame["selected_for_inspection"]
    summary = {
        "rows": len(frame), "seed": p.seed, "params": p.as_dict(),
        "inspected_share": round(float(inspected.mean()), 4),
        "case_source": {k: int(v) for k, v in frame["case_source"].value_counts().sort_index().items()},
        "product_category_share": {k: round(float(v), 4) for k, v in frame["product_category"].value_counts(normalize=True).sort_index().items()},
        "category_shares_source": spec.CATEGORY_SHARES_SOURCE,
        "noncompliance_by_source": {
            k: round(float(v), 4)
            for k, v in frame[inspected].groupby("case_source", observed=True)[spec.TARGET].mean().sort_index().items()
        },
    }  # fmt: skip
    write_json(Path(case.root) / GENERATION, summary)
    return summary


def validate(case, params) -> dict[str, Any]:
    name = _dataset(case, params)
    result = case.validate(name)  # fails fast (exit 1) and writes the evidence in quality/
    summary = {
        "dataset": name, "suite": result.suite, "success": result.success, "evaluated": result.evaluated,
        "passed": result.passed, "rows": result.rows, "evidence_sha256": result.sha256,
        "evidence": str(Path(result.json_path).relative_to(case.root)) if result.json_path else None,
    }  # fmt: skip
    write_json(Path(case.root) / QUALITY, summary)
    return summary


def _load_frame(case, params):
    return case.load(_dataset(case, params))


def train(case, params) -> dict[str, Any]:
    from casuistiek.ce_markering import features as feats
    from casuistiek.ce_markering import model

    mp = model.ModelParams.from_dict(params.get("train"))
    frame = _load_frame(case, params)
    chosen = feats.selected(mp.exclude)
    proof = feats.check(chosen)
    with _run(case, params, "ce-train", params=_flat("train", mp.as_dict()), tags={"ce_markering.stage": "train"}) as run:
        trained = model.train(frame, mp)
        root = Path(case.root)
        (root / MODEL).parent.mkdir(parents=True, exist_ok=True)
        with open(root / MODEL, "wb") as fh:
            pickle.dump(trained, fh, protocol=5)
        write_json(root / FEATURES, proof)
        summary = dict(trained.summary)
        write_json(root / TRAIN, summary)
        run.log_metrics({f"train.{k}": v for k, v in summary.items() if isinstance(v, (int, float))})
        run.log_artifact(root / FEATURES, "reports")
        run.log_artifact(root / TRAIN, "reports")
        run.log_model(trained.pipeline, "model", pip_requirements=["scikit-learn", "pandas", "numpy"])
        if run.official and _purpose(params) == "use":
            summary["registered"] = run.register_model(f"{case.id}-risicoselectie")
        summary["run_id"] = run.run_id
        summary["official"] = bool(run.official)
    return summary


def evaluate(case, params) -> dict[str, Any]:
    import numpy as np

    from casuistiek.ce_markering import evaluate as ev
    from casuistiek.ce_markering import model

    ep = ev.EvaluationParams.from_dict(params.get("evaluate"))
    root = Path(case.root)
    with open(root / MODEL, "rb") as fh:
        trained = pickle.load(fh)  # noqa: S301 - our own pipeline output, tracked by DVC
    frame = _load_frame(case, params)
    scores = trained.score(frame)
    ablation = {}
    for f in trained.features:
        if f.proxy:
            other = model.train(frame, model.ModelParams(**{**trained.params.as_dict(), "exclude": (*trained.params.exclude, f.name)}))
            ablation[f.name] = other.score(frame)
    test_year = trained.params.test_year
    with _run(case, params, "ce-evaluate", params=_flat("evaluate", ep.__dict__), tags={"ce_markering.stage": "evaluate"}) as run:
        evaluation, fairness = ev.evaluate(
            frame, scores, ep, test_year=test_year, ablation=ablation, gen=(params.get("generate") or {})
        )
        write_json(root / EVALUATION, evaluation)
        write_json(root / FAIRNESS, fairness)
        at = evaluation["at_capacity"]
        run.log_metrics({
            "hit_rate_at_capacity": at["model_hit_rate"] or 0.0, "random_arm_hit_rate": at["random_arm_hit_rate"] or 0.0,
            "lift_at_capacity": at["lift"] or 0.0, "calibration_ece": evaluation["calibration"]["ece"] or 0.0,
            "fairness_triggers": fairness["triggers"]["count"],
        })  # fmt: skip
        run.log_artifact(root / EVALUATION, "reports")
        run.log_artifact(root / FAIRNESS, "reports/ce")
        # The platform's fairlearn report for the headline check: the model's choice on the
        # random arm by legal form (logged as reports/fairness.json in MLflow, with a plot).
        year = frame["decision_date"].dt.year.to_numpy()
        rnd = (year == test_year) & (frame["case_source"] == "random_sample").to_numpy()
        threshold = evaluation["threshold"]
        run.log_fairness(
            frame.loc[rnd, "noncompliant_on_inspection"].to_numpy(bool), scores[rnd] >= threshold,
            frame.loc[rnd, "operator_legal_form"].astype(str).rename("operator_legal_form").reset_index(drop=True),
            n_boot=int(params.get("fairlearn_n_boot", 50)), min_group_size=ep.min_group_n,
        )
    return {"evaluation": evaluation["at_capacity"], "triggers": fairness["triggers"]["count"], "scores_mean": float(np.mean(scores))}


def report(case, params) -> dict[str, Any]:
    from casuistiek.ce_markering import report as rep

    root = Path(case.root)
    data = {name: json.loads((root / path).read_text(encoding="utf-8")) for name, path in
            (("evaluation", EVALUATION), ("fairness", FAIRNESS), ("train", TRAIN), ("features", FEATURES))}  # fmt: skip
    with _run(case, params, "ce-report", tags={"ce_markering.stage": "report"}) as run:
        html = rep.render(case, **data)
        (root / REPORT).parent.mkdir(parents=True, exist_ok=True)
        (root / REPORT).write_text(html, encoding="utf-8")
        run.log_artifact(root / REPORT, "reports")
    return {"report": REPORT, "findings": rep.findings(data["evaluation"], data["fairness"], data["train"])}


STAGES = {"generate": generate, "validate": validate, "train": train, "evaluate": evaluate, "report": report}


def main(argv: list[str] | None = None) -> int:
    from idsp.case import Case

    parser = argparse.ArgumentParser(prog="ce_markering", description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=list(STAGES))
    parser.add_argument("--case", default=None, help="case folder (default: found from the current folder)")
    args = parser.parse_args(argv)
    try:
        case = Case.open(args.case)
        result = STAGES[args.stage](case, load_params(case))
    except IdspError as exc:
        print(f"ce_markering {args.stage}: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:
        # MLflow's 401/403 is a login to fix, not a bug: one paragraph, no traceback
        refused = tracking_login_refused(exc, _tracking_uri())
        if refused is None:
            raise
        print(f"ce_markering {args.stage}: {refused.message}", file=sys.stderr)
        return refused.exit_code
    print(json.dumps(result, default=str, sort_keys=True)[:2000])
    return 0


def _tracking_uri() -> str | None:
    try:
        from idsp.config import load_config

        return load_config().tracking.client_uri()
    except IdspError:
        return None


if __name__ == "__main__":
    sys.exit(main())
