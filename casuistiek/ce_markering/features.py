"""Model features of the CE-marking case, each with its written risk rationale.

Rule: a column becomes a feature only through ``FEATURES``, which says where it comes
from and why it indicates product risk; the fairness groups, protected grounds and every
column known only after selection are never features (``check`` proves it and writes the
proof to ``reports/features.json``, which the checklist reads). Features that can stand in
for a group carry a ``proxy`` note: they are kept or dropped after the proxy review, not
silently.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from casuistiek.ce_markering import spec

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd


@dataclass(frozen=True)
class Feature:
    name: str
    kind: str  # category | bool | numeric
    sources: tuple[str, ...]
    rationale: str
    proxy: str = ""  # which group it may stand in for, and how that is checked


FEATURES: tuple[Feature, ...] = (
    Feature("product_category", "category", ("product_category",),
            "Product groups differ in how often they fail essential requirements; Safety Gate alerts are concentrated in a few groups (765/2008 art. 19: risk assessment)."),
    Feature("product_user", "category", ("product_user",),
            "Consumer products are used without training or protective measures; Safety Gate records the product user for this reason."),
    Feature("origin_region", "category", ("country_of_origin",),
            "Country of origin of the product: China accounts for 40-61 % of Safety Gate alerts (sources disagree); grouped as EU, CN/HK, other.",
            proxy="may stand in for the nationality of a sole trader who imports; measured within product category (reference e.3)"),
    Feature("operator_role", "category", ("operator_role",),
            "Manufacturers, importers, distributors and fulfilment service providers carry different obligations (Reg. 2019/1020 art. 4)."),
    Feature("sales_channel", "category", ("sales_channel",),
            "Products sold online reach consumers without a retailer's check (Commission Notice 2017/C 250/01)."),
    Feature("brand_type", "category", ("brand_type",),
            "Unbranded products have no brand owner who answers for them (Safety Gate 'Brand')."),
    Feature("counterfeit_suspected", "bool", ("counterfeit_suspected",),
            "Counterfeits skip conformity assessment (Safety Gate 'Counterfeit')."),
    Feature("price_ratio", "numeric", ("price_eur", "product_category"),
            "Log of the price relative to the category median: a very low price suggests cut corners."),
    Feature("listing_gpsr_info_complete", "bool", ("listing_gpsr_info_complete",),
            "The online listing lacks the information GPSR art. 19 requires (manufacturer, product id, warnings, EU responsible person).",
            proxy="incomplete listings are far more common among sole traders and non-EU sellers, often through formatting; checked with the outcome test on the random arm"),
    Feature("esurveillance_hit", "bool", ("esurveillance_hit",),
            "Matched by the Commission's eSurveillance crawler or SAFE-like tools to a known dangerous product."),
    Feature("nb_mismatch", "bool", ("notified_body_number", "nb_required"),
            "A notified-body number where none is needed, or none where one is required: a known misuse pattern of the CE mark."),
    Feature("ce_mark_present", "bool", ("ce_mark_present",),
            "The first-level check of market surveillance: is the CE marking there at all."),
    Feature("eu_responsible_person_present", "bool", ("eu_responsible_person_present",),
            "An EU responsible person must exist for products from outside the EU (Reg. 2019/1020 art. 4)."),
    Feature("vat_id_valid", "bool", ("vat_id_valid",),
            "An operator that cannot be traced to a valid VAT number is harder to hold to account."),
    Feature("log_prior_inspections", "numeric", ("prior_inspections_n",),
            "How well the operator is known to the inspectorate (NLA selection criteria)."),
    Feature("log_prior_noncompliance", "numeric", ("prior_noncompliance_n",),
            "Earlier violations (765/2008 art. 19 'established principles'; NLA selection criteria)."),
    Feature("never_inspected", "bool", ("days_since_last_inspection",),
            "Operators never inspected (minimum-frequency rule)."),
    Feature("log_days_since_last_inspection", "numeric", ("days_since_last_inspection",),
            "Time since the last inspection (minimum-frequency rule); 0 when never inspected."),
    Feature("log_complaints", "numeric", ("complaints_12m",),
            "Complaints in the last 12 months (765/2008 art. 19; Reg. 2024/1781 art. 66)."),
    Feature("log_operator_age", "numeric", ("operator_age_years",),
            "Years since the firm registered: new market entrants know the CE obligations less well."),
    Feature("log_safetygate_alerts", "numeric", ("safetygate_similar_alerts_24m",),
            "Alerts on similar products in the last 24 months (Safety Gate follow-up duty, GPSR art. 26)."),
    Feature("icsms_prior_record", "bool", ("icsms_prior_record",),
            "An earlier record in ICSMS, the authorities' shared inspection system."),
    Feature("customs_referral", "category", ("customs_referral",),
            "Customs suspended release or doubted the documents or the CE marking (Reg. 2019/1020 art. 26)."),
)  # fmt: skip

NOT_FEATURES: dict[str, str] = {
    "operator_legal_form": "fairness group: tested, never used (AK ver-03)",
    "operator_size_class": "fairness group: tested, never used",
    "operator_country": "fairness group; can proxy nationality for sole traders",
    "ships_from_country": "mostly the operator's country: a proxy with no product-risk rationale beyond origin",
    "marketplace": "the platform's identity says nothing about the product",
    "case_id": "identifier", "operator_pid": "identifier", "gtin": "identifier",
    "decision_date": "used for the time-based split",
    "legislation_codes": "redundant with product_category", "safetygate_category": "redundant with product_category",
    "competent_authority": "redundant with product_category and user", "hs_code": "redundant with product_category",
    "conformity_module": "summarised by nb_mismatch", "nb_required": "summarised by nb_mismatch",
    "notified_body_number": "summarised by nb_mismatch",
    "safetygate_top_risk_type": "describes the kind of harm, not how likely non-compliance is",
    "price_eur": "used relative to the category median (price_ratio)",
    **{c: "known only after selection or inspection (leakage)" for c in spec.POST_SELECTION_COLUMNS},
    **{c: "the selection decision itself: circular (leakage)" for c in spec.SELECTION_COLUMNS},
}  # fmt: skip

PROTECTED_GROUNDS = (
    "religion", "belief", "political", "race", "ethnic", "sex", "gender", "nationality",
    "sexual_orientation", "civil_status", "marital", "migration", "name", "language",
)  # fmt: skip
GROUP_SOURCES = ("operator_legal_form", "operator_size_class", "operator_country")


def selected(exclude: list[str] | tuple[str, ...] = ()) -> tuple[Feature, ...]:
    unknown = sorted(set(exclude) - {f.name for f in FEATURES})
    if unknown:
        from idsp.errors import UserError

        raise UserError(
            f"cannot exclude unknown feature(s) {', '.join(unknown)}",
            where="params.yaml, ce_markering.features.exclude",
            fix=f"Use names from: {', '.join(f.name for f in FEATURES)}",
        )
    return tuple(f for f in FEATURES if f.name not in exclude)


def region_of(countries) -> Any:
    import numpy as np

    table = {c: spec.country_region(c) for c in spec.COUNTRIES}
    return np.array([table.get(str(c), "other_non_EU") for c in countries], dtype=object)


def design(frame: pd.DataFrame, features: tuple[Feature, ...] = FEATURES) -> pd.DataFrame:
    """The feature table for ``frame`` (one row per case), only from selection-time columns."""
    import numpy as np
    import pandas as pd

    medians = {c.name: c.price_median_eur for c in spec.CATEGORIES}
    days = frame["days_since_last_inspection"]
    derived = {
        "origin_region": lambda: pd.Categorical(
            pd.Series(frame["country_of_origin"].astype(str)).map(
                {c: ("CN_HK" if spec.country_region(c) == "CN_HK" else "EU" if c in spec.EU_COUNTRIES else "other")
                 for c in spec.COUNTRIES}), categories=["EU", "CN_HK", "other"]),
        "price_ratio": lambda: np.log(frame["price_eur"].to_numpy(float)
                                      / frame["product_category"].astype(str).map(medians).to_numpy(float)),
        "nb_mismatch": lambda: frame["notified_body_number"].notna().to_numpy() != frame["nb_required"].to_numpy(bool),
        "never_inspected": lambda: days.isna().to_numpy(),
        "log_days_since_last_inspection": lambda: np.log1p(days.fillna(0).to_numpy(float)),
        "log_prior_inspections": lambda: np.log1p(frame["prior_inspections_n"].to_numpy(float)),
        "log_prior_noncompliance": lambda: np.log1p(frame["prior_noncompliance_n"].to_numpy(float)),
        "log_complaints": lambda: np.log1p(frame["complaints_12m"].to_numpy(float)),
        "log_operator_age": lambda: np.log1p(frame["operator_age_years"].to_numpy(float)),
        "log_safetygate_alerts": lambda: np.log1p(frame["safetygate_similar_alerts_24m"].to_numpy(float)),
    }  # fmt: skip
    out = {}
    for f in features:
        if f.name in derived:
            out[f.name] = derived[f.name]()
        elif f.kind == "bool":
            out[f.name] = frame[f.name].to_numpy(bool)
        else:
            out[f.name] = frame[f.name].to_numpy() if f.kind == "numeric" else frame[f.name]
    table = pd.DataFrame(out, index=frame.index)
    for f in features:
        if f.kind == "category":
            table[f.name] = table[f.name].astype(str)
        elif f.kind == "bool":
            table[f.name] = table[f.name].astype(float)
    return table


def check(features: tuple[Feature, ...]) -> dict[str, Any]:
    """The proof the checklist reads: rationale for each, no protected ground, no leakage."""
    without_rationale = [f.name for f in features if len(f.rationale.strip()) < 20]
    protected = [
        f.name for f in features
        if any(g in part for part in (f.name, *f.sources) for g in PROTECTED_GROUNDS) or set(f.sources) & set(GROUP_SOURCES)
    ]  # fmt: skip
    leaking = [f.name for f in features if set(f.sources) & {*spec.POST_SELECTION_COLUMNS, *spec.SELECTION_COLUMNS}]
    return {
        "features": [asdict(f) for f in features],
        "excluded_by_params": [f.name for f in FEATURES if f not in features],
        "not_features": NOT_FEATURES,
        "proxies": [{"feature": f.name, "note": f.proxy} for f in features if f.proxy],
        "protected_grounds_checked": list(PROTECTED_GROUNDS),
        "checks": {
            "features": len(features),
            "features_without_rationale": len(without_rationale),
            "protected_or_group_features": len(protected),
            "leaking_features": len(leaking),
        },
        "problems": {"without_rationale": without_rationale, "protected_or_group": protected, "leaking": leaking},
    }
