"""The synthetic data: the 52 columns, calibrated shares, fictional names, the random arm."""

from __future__ import annotations

import json

import pytest

from casuistiek.ce_markering import spec
from casuistiek.ce_markering.generate import GenerationParams, generate
from casuistiek.ce_markering.suite import suite

TEMPLATE_SUITE = "templates/case/versions/1.0.0/project/gx/{% if case_type == 'ce_markering' %}ce_cases.json{% endif %}"


@pytest.fixture(scope="module")
def frame():
    return generate({"rows": 40_000, "seed": 7})


def test_columns_follow_the_specification(frame):
    assert list(frame.columns) == list(spec.COLUMN_NAMES)
    assert len(frame.columns) == 52
    assert frame["case_id"].is_unique
    assert frame["case_id"].str.match(r"^CE-20(2[1-5])-\d{6}$").all()
    assert frame["decision_date"].min() >= __import__("pandas").Timestamp(spec.START_DATE)
    assert (frame["prior_noncompliance_n"] <= frame["prior_inspections_n"]).all()


def test_same_seed_same_table_other_seed_other_table(frame):
    again = generate({"rows": 40_000, "seed": 7})
    assert again.equals(frame)
    assert not generate({"rows": 40_000, "seed": 8})["price_eur"].equals(frame["price_eur"])


def test_category_shares_follow_safety_gate_2024(frame):
    share = frame["product_category"].value_counts(normalize=True)
    weights = {c.name: c.share for c in spec.CATEGORIES}
    total = sum(weights.values())
    # toys 15 % and electrical appliances 10 % of all alerts -> 15/37 and 10/37 of the CE part
    assert share["toy"] == pytest.approx(0.15 / total, abs=0.01)
    electrical = sum(share[c.name] for c in spec.CATEGORIES if c.safetygate_category.startswith("Electrical"))
    assert electrical == pytest.approx(0.10 / total, abs=0.01)
    assert set(frame["operator_country"].astype(str)) <= set(spec.COUNTRIES)
    nl = (frame.drop_duplicates("operator_pid")["operator_country"] == "NL").mean()
    assert nl == pytest.approx(0.55, abs=0.03)


def test_operators_and_notified_bodies_are_fictional(frame):
    assert frame["operator_pid"].astype(str).str.fullmatch(r"[0-9a-f]{16}").all()
    numbers = set(frame["notified_body_number"].dropna().astype(str))
    assert numbers and all(9000 <= int(n) <= 9099 for n in numbers)
    assert all("Fictief" in name and "(synthetic)" in name for name in spec.FICTIONAL_NOTIFIED_BODIES.values())
    assert frame["gtin"].str.fullmatch(r"2\d{12}").all()
    digits = frame["gtin"].head(200).map(lambda g: [int(c) for c in g])
    assert all(sum(d * (3 if i % 2 else 1) for i, d in enumerate(g)) % 10 == 0 for g in digits)


def test_labels_only_for_inspected_cases_and_a_random_arm(frame):
    inspected = frame["selected_for_inspection"]
    assert frame.loc[~inspected, spec.TARGET].isna().all()
    assert frame.loc[inspected, spec.TARGET].notna().all()
    assert inspected.mean() == pytest.approx(0.08, abs=0.005)
    sources = frame.loc[inspected, "case_source"].value_counts(normalize=True)
    assert sources["random_sample"] == pytest.approx(0.20, abs=0.02)
    assert frame.loc[~inspected, "case_source"].isna().all()


def test_the_planted_proxy_correlates_with_sole_traders(frame):
    incomplete = ~frame["listing_gpsr_info_complete"]
    by_form = incomplete.groupby(frame["operator_legal_form"], observed=True).mean()
    assert by_form["eenmanszaak"] > 3 * by_form["bv"]
    # ... but on the blind random arm it says little about non-compliance
    rnd = frame[frame["case_source"] == "random_sample"]
    other = frame[frame["selected_for_inspection"] & (frame["case_source"] != "random_sample")]
    gap_random = rnd.groupby("listing_gpsr_info_complete")[spec.TARGET].mean().diff().abs().iloc[-1]
    gap_other = other.groupby("listing_gpsr_info_complete")[spec.TARGET].mean().diff().abs().iloc[-1]
    assert gap_other > gap_random + 0.1


def test_bad_parameters_name_the_file_and_the_field():
    from idsp.errors import UserError

    with pytest.raises(UserError, match="params.yaml, ce_markering.generate") as err:
        GenerationParams.from_dict({"rowz": 10})
    assert "rows" in err.value.message
    with pytest.raises(UserError, match="at least 1000"):
        GenerationParams.from_dict({"rows": 10})


def test_template_carries_the_kit_suite():
    from cekit import REPO

    assert json.loads((REPO / TEMPLATE_SUITE).read_text()) == suite()


@pytest.mark.slow
def test_the_contract_refuses_a_real_notified_body_number(tmp_path, frame):
    """The suite as a whole runs in the pipeline test; here only its fictional-range rule."""
    from idsp import quality

    rule = [e for e in suite()["expectations"] if e["kwargs"].get("column") == "notified_body_number"]
    (tmp_path / "nb.json").write_text(json.dumps({"name": "nb", "expectations": rule}))
    bad = frame.head(3000).copy()
    assert quality.validate(bad, "nb", gx_dir=tmp_path, save=False).success
    bad["notified_body_number"] = bad["notified_body_number"].cat.add_categories(["0123"])
    bad.loc[bad.index[0], "notified_body_number"] = "0123"  # a real-looking NANDO number
    result = quality.validate(bad, "nb", gx_dir=tmp_path, save=False, fail_fast=False)
    assert [(o.type, o.column, o.unexpected_count) for o in result.failed] == [
        ("expect_column_values_to_match_regex", "notified_body_number", 1)
    ]
