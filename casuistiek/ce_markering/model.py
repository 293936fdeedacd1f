"""Time-based split and the scikit-learn model of the CE-marking case.

Rule: the model learns only from cases inspected before the test period (train up to
``train_until``, choose settings on ``validate_year``, report on ``test_year``), and only
from the features in ``features.FEATURES``; the test period is never seen in training.
The baseline is a logistic regression (transparent: its coefficients are the model
card); gradient boosting is the comparator. The model output is a priority list, not a
decision.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from casuistiek.ce_markering import features as feats
from casuistiek.ce_markering import spec

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd


@dataclass(frozen=True)
class ModelParams:
    kind: str = "logistic"  # logistic | gradient_boosting
    C: float = 1.0
    train_until: int = 2023
    validate_year: int = 2024
    test_year: int = 2025
    exclude: tuple[str, ...] = field(default_factory=tuple)
    seed: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ModelParams:
        data = dict(data or {})
        if "exclude" in data:
            data["exclude"] = tuple(data["exclude"] or ())
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown or data.get("kind", "logistic") not in ("logistic", "gradient_boosting"):
            from idsp.errors import UserError

            raise UserError(
                f"bad model parameter(s): {', '.join(unknown) or 'kind=' + str(data.get('kind'))}",
                where="params.yaml, ce_markering.train",
                fix=f"Use {', '.join(cls.__dataclass_fields__)}; kind is logistic or gradient_boosting",
            )
        return cls(**data)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["exclude"] = list(self.exclude)
        return out


def years(frame: pd.DataFrame):
    return frame["decision_date"].dt.year.to_numpy()


def split(frame: pd.DataFrame, p: ModelParams) -> dict[str, pd.DataFrame]:
    """train/validate: inspected cases of their years; test: every case of the test year."""
    y = years(frame)
    inspected = frame[spec.TARGET].notna().to_numpy()
    return {
        "train": frame[(y <= p.train_until) & inspected],
        "validate": frame[(y == p.validate_year) & inspected],
        "test": frame[y == p.test_year],
    }


def build(p: ModelParams, features: tuple[feats.Feature, ...]):
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    categorical = [f.name for f in features if f.kind == "category"]
    numeric = [f.name for f in features if f.kind != "category"]
    prep = ColumnTransformer(
        [
            ("category", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical),
            ("numeric", StandardScaler(), numeric),
        ],
        verbose_feature_names_out=False,
    )
    if p.kind == "logistic":
        clf = LogisticRegression(C=p.C, max_iter=2000)
    else:
        clf = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.08, random_state=p.seed)
    return Pipeline([("prep", prep), ("model", clf)])


@dataclass
class Trained:
    pipeline: Any
    params: ModelParams
    features: tuple[feats.Feature, ...]
    summary: dict[str, Any]

    def score(self, frame: pd.DataFrame):
        return self.pipeline.predict_proba(feats.design(frame, self.features))[:, 1]


def train(frame: pd.DataFrame, p: ModelParams) -> Trained:
    """Fit on the training years; report validation scores and the model's weights."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    features = feats.selected(p.exclude)
    parts = split(frame, p)
    train_part, val = parts["train"], parts["validate"]
    y_train = train_part[spec.TARGET].to_numpy(bool)
    pipe = build(p, features)
    pipe.fit(feats.design(train_part, features), y_train)
    trained = Trained(pipe, p, features, {})
    summary: dict[str, Any] = {
        "params": p.as_dict(),
        "n_train": int(len(train_part)),
        "n_validate": int(len(val)),
        "train_positive_rate": round(float(y_train.mean()), 4),
        "features": [f.name for f in features],
    }
    if len(val) and val[spec.TARGET].nunique() > 1:
        y_val = val[spec.TARGET].to_numpy(bool)
        s = trained.score(val)
        summary["validate_roc_auc"] = round(float(roc_auc_score(y_val, s)), 4)
        summary["validate_pr_auc"] = round(float(average_precision_score(y_val, s)), 4)
        rnd = (val["case_source"] == "random_sample").to_numpy()
        if rnd.sum() > 10 and len(set(y_val[rnd])) > 1:
            summary["validate_random_arm_roc_auc"] = round(float(roc_auc_score(y_val[rnd], s[rnd])), 4)
    if p.kind == "logistic":
        names = pipe.named_steps["prep"].get_feature_names_out()
        coef = pipe.named_steps["model"].coef_[0]
        summary["coefficients"] = {str(n): round(float(c), 4) for n, c in sorted(zip(names, coef, strict=True), key=lambda t: -abs(t[1]))}
    trained.summary = summary
    return trained
