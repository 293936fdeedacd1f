"""The data contract of a CE-marking case: a GX 1.x expectation suite built from ``spec``.

Rule: the suite is derived from the column specification, never written by hand, so the
contract and the generator cannot drift apart; the case template carries the output of
``suite()`` as ``gx/ce_cases.json`` (a test keeps the two equal). It checks shape (all 52
columns, in order), keys, value domains, ranges, and that notified-body numbers come only
from the fictional range.
"""

from __future__ import annotations

import json
from typing import Any

from casuistiek.ce_markering import spec

NAME = "ce_cases"
_RANGES = {
    "operator_age_years": (0, 60), "prior_inspections_n": (0, 500), "prior_noncompliance_n": (0, 500),
    "days_since_last_inspection": (0, 20000), "complaints_12m": (0, 1000),
    "safetygate_similar_alerts_24m": (0, 1000), "risk_score": (0, 1),
}  # fmt: skip
_REGEX = {
    "case_id": r"^CE-20[0-9]{2}-[0-9]{6,}$",
    "operator_pid": r"^[0-9a-f]{16}$",
    "hs_code": r"^[0-9]{6}$",
    "gtin": r"^2[0-9]{12}$",
    "notified_body_number": r"^90[0-9]{2}$",  # the fictional range 9000-9099 only
    "legislation_codes": r"^[A-Z]+(;[A-Z]+)*$",
}


def _e(type_: str, **kwargs: Any) -> dict[str, Any]:
    return {"type": type_, "kwargs": kwargs}


def suite() -> dict[str, Any]:
    exps = [
        _e("expect_table_columns_to_match_ordered_list", column_list=list(spec.COLUMN_NAMES)),
        _e("expect_table_row_count_to_be_between", min_value=1000, max_value=50_000_000),
        _e("expect_column_values_to_be_unique", column="case_id"),
    ]
    for c in spec.COLUMNS:
        if not c.nullable:
            exps.append(_e("expect_column_values_to_not_be_null", column=c.name))
        if c.domain:
            exps.append(_e("expect_column_values_to_be_in_set", column=c.name, value_set=list(c.domain)))
        if c.name in _REGEX:
            exps.append(_e("expect_column_values_to_match_regex", column=c.name, regex=_REGEX[c.name]))
        if c.name in _RANGES:
            lo, hi = _RANGES[c.name]
            exps.append(_e("expect_column_values_to_be_between", column=c.name, min_value=lo, max_value=hi))
    exps += [
        _e("expect_column_values_to_be_between", column="price_eur", min_value=0.01, max_value=1_000_000),
        _e("expect_column_pair_values_a_to_be_greater_than_b", column_A="prior_inspections_n",
           column_B="prior_noncompliance_n", or_equal=True),
        _e("expect_column_mean_to_be_between", column="selected_for_inspection", min_value=0.005, max_value=0.5),
    ]  # fmt: skip
    return {
        "name": NAME,
        "expectations": exps,
        "meta": {
            "dataset": NAME,
            "generated_by": "casuistiek.ce_markering.suite",
            "note": "The data contract of a CE-marking case; regenerate it with the kit, do not edit by hand.",
        },
    }


def suite_json() -> str:
    return json.dumps(suite(), indent=2, ensure_ascii=False) + "\n"
