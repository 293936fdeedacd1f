"""The identifier check for what goes to MLflow, and the fairness report (no server needed)."""

from __future__ import annotations

import pytest
from idsp import tracking
from idsp.errors import PIIFound


@pytest.mark.parametrize(
    "text,kind",
    [
        ("subject 111222333", "bsn"),
        ("feature_111222333_flag", "bsn"),
        ("rekening NL91ABNA0417164300", "iban"),
        ("rekening NL91 ABNA 0417 1643 00", "iban"),
        ("mail jan.jansen@example.nl", "email"),
        ("tel=+31612345678", "phone"),
        ("bel 06-12345678", "phone"),
    ],
)
def test_identifiers_are_found(text, kind):
    found = tracking.find_identifiers(text)
    assert kind in {k for k, _ in found}
    with pytest.raises(PIIFound) as err:
        tracking.check_text(text, "a parameter")
    assert err.value.exit_code == 1


@pytest.mark.parametrize(
    "text",
    [
        "n_estimators 100",
        "random_state 42",
        "learning_rate 0.001",
        "date 20261128",  # 8 digits: the shape of a KvK number, but not named so
        "version 3.17.2",
        "auc_fold_3 0.8123456",
        "loss 0.123456789",
        "run 2026-11-28T12:00:00",
    ],
)
def test_ordinary_values_pass(text):
    assert tracking.find_identifiers(text) == []


def test_kvk_only_where_the_name_says_so():
    assert tracking.find_identifiers("12345678") == []
    assert [k for k, _ in tracking.find_identifiers("kvk_nummer 12345678", kvk_context=True)] == ["kvk"]


def test_masked_value_in_message_never_the_raw_one():
    with pytest.raises(PIIFound) as err:
        tracking.check_text("x 111222333", "parameter 'x'")
    assert "111222333" not in err.value.message and "33" in err.value.message


def test_parquet_artefact_with_a_bsn_column_is_refused(tmp_path):
    import pandas as pd

    path = tmp_path / "extract.parquet"
    pd.DataFrame({"bsn": ["111222333", "123456782"], "x": [1, 2]}).to_parquet(path)
    with pytest.raises(PIIFound, match="bsn"):
        tracking.check_file(path)
    clean = tmp_path / "clean.parquet"
    pd.DataFrame({"x": [1, 2]}).to_parquet(clean)
    tracking.check_file(clean)


def test_fairness_report_with_bootstrap_and_control(tmp_path):
    import numpy as np
    from idsp.tracking import fairness

    rng = np.random.default_rng(0)
    n = 2000
    group = rng.choice(["eenmanszaak", "bv", "nv"], n, p=[0.45, 0.45, 0.10])
    control = rng.choice(["speelgoed", "elektra"], n)
    y_true = rng.integers(0, 2, n)
    rate = np.select([group == "eenmanszaak", group == "bv"], [0.40, 0.25], 0.30)
    y_pred = (rng.random(n) < rate).astype(int)
    report = fairness.compute(y_true, y_pred, group, control, n_boot=30, min_group_size=250)
    d = report["disparities"]
    assert 0.08 < d["demographic_parity_difference"] < 0.22
    low, high = report["disparity_ci"]["demographic_parity_difference"]
    assert low <= d["demographic_parity_difference"] <= high
    by = {g["group"]["group"]: g for g in report["by_group"]}
    assert by["eenmanszaak"]["selection_rate"] > by["bv"]["selection_rate"]
    lo, hi = by["bv"]["selection_rate_ci"]
    assert lo <= by["bv"]["selection_rate"] <= hi
    assert by["nv"]["small_group"] and report["small_groups"] == [{"group": "nv"}]
    assert {c["control"]["control"] for c in report["conditional"]} == {"speelgoed", "elektra"}
    metrics = fairness.headline_metrics(report)
    assert "fairness.equalized_odds_difference.ci_high" in metrics
    fig = fairness.plot(report)
    fig.savefig(tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 1000


def test_rate_functions_match_fairlearn_and_sklearn():
    import numpy as np
    from fairlearn.metrics import (
        MetricFrame,
        false_negative_rate,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )
    from idsp.tracking import fairness
    from sklearn.metrics import precision_score

    rng = np.random.default_rng(3)
    g, t, p = rng.choice(["a", "b"], 500), rng.integers(0, 2, 500), rng.integers(0, 2, 500)
    pairs = [
        (fairness.selection_rate, selection_rate),
        (fairness.false_positive_rate, false_positive_rate),
        (fairness.false_negative_rate, false_negative_rate),
        (fairness.true_positive_rate, true_positive_rate),
        (fairness.precision, lambda a, b: precision_score(a, b, zero_division=0)),
    ]
    for ours, reference in pairs:
        a = MetricFrame(metrics=ours, y_true=t, y_pred=p, sensitive_features=g).by_group
        b = MetricFrame(metrics=reference, y_true=t, y_pred=p, sensitive_features=g).by_group
        assert np.allclose(a.to_numpy(dtype=float), b.to_numpy(dtype=float)), ours.__name__
