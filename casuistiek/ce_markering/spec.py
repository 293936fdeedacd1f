"""The data specification of a CE-marking case: 52 columns, value domains, calibration.

Rule: this module is data only. Every column says its type, whether it is known at
selection time (``at_selection``) and why it exists; every calibration figure says
whether it is a published figure (with its source) or an assumption. The generator, the
GX suite, the feature list and the report all read these tables; nothing else defines a
column or a value domain. All operators and notified bodies are fictional.
"""

from __future__ import annotations

from dataclasses import dataclass

START_DATE = "2021-01-01"
END_DATE = "2025-12-31"


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str  # str | date | category | bool | int | float
    group: str
    at_selection: bool
    why: str
    domain: tuple[str, ...] = ()
    nullable: bool = False


OPERATOR_ROLES = (
    "manufacturer", "importer", "authorised_representative", "distributor",
    "fulfilment_service_provider", "marketplace_seller",
)  # fmt: skip
LEGAL_FORMS = ("eenmanszaak", "vof", "bv", "nv", "foreign_entity")
SIZE_CLASSES = ("micro", "small", "medium", "large")
SALES_CHANNELS = ("brick_and_mortar", "own_webshop", "online_marketplace", "b2b")
MARKETPLACES = ("Marketplace_A", "Marketplace_B", "Marketplace_C", "Marketplace_D", "Marketplace_E")
BRAND_TYPES = ("no_brand", "private_label", "known_brand")
CONFORMITY_MODULES = ("A", "A1/A2", "B+C", "B+D", "B+E", "B+F", "H")
RISK_TYPES = (
    "chemical", "injuries", "electric_shock", "choking", "fire", "burns", "strangulation",
    "suffocation", "hearing_damage", "environment", "other",
)  # fmt: skip
CUSTOMS_REFERRALS = ("none", "suspended_release_art26", "documentary_doubt", "ce_marking_doubt")
CASE_SOURCES = (
    "model_selection", "random_sample", "complaint", "safetygate_followup", "customs_referral",
    "accident", "campaign",
)  # fmt: skip
INSPECTION_TYPES = ("documentary", "visual", "physical_lab")
RISK_LEVELS = ("serious", "high", "medium", "low", "none")
MEASURES = (
    "none", "advice_letter", "voluntary_corrective_action", "withdrawal", "recall",
    "marketing_ban", "import_rejected", "destruction", "listing_removed", "administrative_fine",
)  # fmt: skip
AUTHORITIES = ("NVWA", "NLA", "RDI", "ILT", "IGJ")
PRODUCT_USERS = ("consumer", "professional")

# Operator country: region shares from the data specification (tunable), then countries
# within a region (assumption). EU = other EU member states than NL.
COUNTRY_REGIONS = {
    "NL": (0.55, {"NL": 1.0}),
    "EU": (0.20, {"DE": 0.35, "BE": 0.25, "FR": 0.12, "PL": 0.12, "IT": 0.08, "ES": 0.08}),
    "CN_HK": (0.15, {"CN": 0.85, "HK": 0.15}),
    "other_non_EU": (0.10, {"TR": 0.3, "GB": 0.25, "US": 0.2, "IN": 0.15, "VN": 0.1}),
}
EU_COUNTRIES = ("NL", "DE", "BE", "FR", "PL", "IT", "ES")
COUNTRIES = tuple(sorted({c for _, (_, cs) in COUNTRY_REGIONS.items() for c in cs}))


@dataclass(frozen=True)
class Category:
    """One product category: its legal acts, authority, share of cases and risk prior."""

    name: str
    safetygate_category: str
    legislation: str  # ';'-joined codes of the CE acts (reference d.4)
    authority: str  # competent authority for consumer use; professional use below
    authority_professional: str
    hs_code: str  # indicative 6-digit code, verify in TARIC
    share: float  # weight before normalisation, see CATEGORY_SHARES_SOURCE
    professional_share: float
    nb_required_share: float
    price_median_eur: float
    risk: float  # logit offset of latent non-compliance (assumption, tunable)
    risk_types: tuple[tuple[str, float], ...]


# Shares: Safety Gate 2024 gives toys 15 % and electrical appliances 10 % of 4,137 alerts
# (published); the other CE categories together are an assumed 12 %. Non-CE categories
# of Safety Gate (cosmetics 36 %, motor vehicles 9 %, chemical products 6 %) are out of
# scope for CE marking and left out; the CE part is renormalised to 1.
CATEGORY_SHARES_SOURCE = (
    "EU Safety Gate 2024 (4,137 alerts): toys 15 %, electrical appliances 10 % (published, "
    "eubusiness.com summary); other CE categories 12 % in total is an assumption; non-CE "
    "categories (cosmetics, motor vehicles, chemical products) excluded; renormalised"
)
_ELECTRIC = (("electric_shock", 0.35), ("fire", 0.25), ("burns", 0.15), ("injuries", 0.1), ("chemical", 0.1), ("other", 0.05))
CATEGORIES = (
    Category("toy", "Toys", "TOYS", "NVWA", "NVWA", "950300", 0.150, 0.0, 0.05, 15, 0.35,
             (("chemical", 0.55), ("choking", 0.2), ("injuries", 0.1), ("strangulation", 0.05), ("suffocation", 0.05), ("hearing_damage", 0.05))),
    Category("household_electrical", "Electrical appliances and equipment", "LVD;EMC;ROHS", "NVWA", "NLA", "851679",
             0.035, 0.1, 0.0, 40, 0.1, _ELECTRIC),
    Category("lighting", "Electrical appliances and equipment", "LVD;EMC;ROHS", "NVWA", "NLA", "940540",
             0.025, 0.15, 0.0, 20, 0.0, _ELECTRIC),
    Category("charger_power_supply", "Electrical appliances and equipment", "LVD;EMC;ROHS", "NVWA", "NLA", "850440",
             0.025, 0.05, 0.0, 12, 0.45, _ELECTRIC),
    Category("e_bike_battery", "Electrical appliances and equipment", "LVD;EMC", "NVWA", "NLA", "850760",
             0.015, 0.05, 0.0, 350, 0.3, (("fire", 0.6), ("burns", 0.2), ("electric_shock", 0.1), ("environment", 0.1))),
    Category("power_tool", "Machinery", "MACH;EMC", "NLA", "NLA", "846729", 0.030, 0.5, 0.05, 80, 0.0,
             (("injuries", 0.6), ("electric_shock", 0.25), ("hearing_damage", 0.1), ("other", 0.05))),
    Category("radio_device", "Communication and media equipment", "RED", "RDI", "RDI", "851762", 0.025, 0.1, 0.05, 30, -0.1,
             (("electric_shock", 0.3), ("hearing_damage", 0.2), ("fire", 0.2), ("other", 0.3))),
    Category("machinery", "Machinery", "MACH", "NLA", "NLA", "847989", 0.020, 0.9, 0.3, 2500, -0.2,
             (("injuries", 0.8), ("hearing_damage", 0.1), ("other", 0.1))),
    Category("ppe_helmet", "Protective equipment", "PPE", "NVWA", "NLA", "650610", 0.010, 0.5, 0.9, 35, 0.1,
             (("injuries", 0.9), ("other", 0.1))),
    Category("ppe_gloves", "Protective equipment", "PPE", "NVWA", "NLA", "611610", 0.010, 0.6, 0.4, 8, 0.0,
             (("chemical", 0.4), ("injuries", 0.5), ("other", 0.1))),
    Category("ppe_mask", "Protective equipment", "PPE", "NVWA", "NLA", "630790", 0.010, 0.5, 0.95, 5, 0.3,
             (("other", 0.6), ("suffocation", 0.2), ("chemical", 0.2))),
    Category("gas_appliance", "Gas appliances and components", "GAR", "NVWA", "NLA", "732111", 0.008, 0.3, 1.0, 150, 0.1,
             (("fire", 0.4), ("burns", 0.3), ("chemical", 0.2), ("other", 0.1))),
    Category("pressure_equipment", "Machinery", "PED", "NLA", "NLA", "731100", 0.007, 0.9, 0.6, 600, -0.1,
             (("injuries", 0.7), ("burns", 0.2), ("other", 0.1))),
)  # fmt: skip
CATEGORY_NAMES = tuple(c.name for c in CATEGORIES)
SAFETYGATE_CATEGORIES = tuple(sorted({c.safetygate_category for c in CATEGORIES}))
LEGISLATION_CODES = ("TOYS", "LVD", "EMC", "RED", "ROHS", "MACH", "PPE", "GAR", "PED")

# Country of origin of the product. Published: China's share of Safety Gate alerts is
# reported as 40 % and as 61 % (sources disagree); we take 50 %, tunable.
ORIGIN_CN_SHARE = 0.50
ORIGIN_SOURCE = "Safety Gate 2024 share from China: 40 % (bitforged.space) or 61 % (wiadomoscikosmetyczne.pl); 50 % used"

# Fictional notified bodies: numbers from a reserved, flagged range (9000-9099) that is
# not a NANDO range in use; names are invented and say they are fictional.
FICTIONAL_NOTIFIED_BODIES = {
    f"{9000 + i:04d}": f"Fictief Keuringsinstituut {name} (synthetic)"
    for i, name in enumerate(
        ("Aalsum", "Boekel", "Cruquius", "Dinxperlo", "Eext", "Foxhol", "Garyp", "Hollum",
         "Ilpendam", "Jonkersvaart", "Kollum", "Lutjebroek", "Marum", "Nes", "Oosterend",
         "Paesens", "Ransdorp", "Sint Jacobiparochie", "Tjerkwerd", "Usquert")
    )
}  # fmt: skip


def _c(name, dtype, group, at_selection, why, domain=(), nullable=False) -> Column:
    return Column(name, dtype, group, at_selection, why, tuple(domain), nullable)


COLUMNS: tuple[Column, ...] = (
    # identity
    _c("case_id", "str", "identity", True, "key: CE-{year}-{6 digits}"),
    _c("decision_date", "date", "identity", True, "date of the selection decision; drives the time-based split"),
    _c("operator_pid", "str", "identity", True, "HMAC-SHA256 of the operator's KvK number, 16 hex characters; never the number"),
    _c("operator_role", "category", "identity", True, "economic-operator role of Reg. (EU) 2019/1020", OPERATOR_ROLES),
    _c("operator_legal_form", "category", "identity", True, "fairness group: AK ver-03 names sole traders against larger firms", LEGAL_FORMS),
    _c("operator_size_class", "category", "identity", True, "fairness group", SIZE_CLASSES),
    _c("operator_country", "category", "identity", True, "fairness group; may proxy nationality for sole traders", COUNTRIES),
    _c("eu_responsible_person_present", "bool", "identity", True, "art. 4 of Reg. (EU) 2019/1020"),
    _c("vat_id_valid", "bool", "identity", True, "data quality of the operator record"),
    _c("operator_age_years", "int", "identity", True, "years since registration; log-normal"),
    _c("prior_inspections_n", "int", "identity", True, "earlier inspections (NLA selection criteria)"),
    _c("prior_noncompliance_n", "int", "identity", True, "earlier violations (765/2008 art. 19; NLA criteria)"),
    _c("days_since_last_inspection", "int", "identity", True, "minimum-frequency rule; empty when never inspected", nullable=True),
    _c("complaints_12m", "int", "identity", True, "complaints in the last 12 months (765/2008 art. 19; 2024/1781 art. 66)"),
    # product
    _c("product_category", "category", "product", True, "CE product group (value domain d.4)", CATEGORY_NAMES),
    _c("legislation_codes", "str", "product", True, "';'-joined CE acts that apply, e.g. TOYS;RED;ROHS"),
    _c("safetygate_category", "category", "product", True, "Safety Gate vocabulary, kept apart from the CE group", SAFETYGATE_CATEGORIES),
    _c("product_user", "category", "product", True, "Safety Gate field 'Product user'", PRODUCT_USERS),
    _c("competent_authority", "category", "product", True, "derived from legislation and user", AUTHORITIES),
    _c("hs_code", "str", "product", True, "indicative HS code, 6 digits (verify in TARIC)"),
    _c("gtin", "str", "product", True, "EAN-13 with a valid check digit in the in-store 200-299 prefix range"),
    _c("brand_type", "category", "product", True, "Safety Gate 'Brand'", BRAND_TYPES),
    _c("counterfeit_suspected", "bool", "product", True, "Safety Gate 'Counterfeit'"),
    _c("price_eur", "float", "product", True, "log-normal per category; a very low price is a signal"),
    _c("country_of_origin", "category", "product", True, "Safety Gate 'Country of origin'", COUNTRIES),
    # channel
    _c("sales_channel", "category", "channel", True, "Commission Notice 2017/C 250/01", SALES_CHANNELS),
    _c("marketplace", "category", "channel", True, "synthetic marketplace names; empty off-marketplace", MARKETPLACES, nullable=True),
    _c("ships_from_country", "category", "channel", True, "where the parcel ships from", COUNTRIES),
    _c("listing_gpsr_info_complete", "bool", "channel", True, "GPSR art. 19 listing information shown (manufacturer, product id, warnings, EU responsible person)"),
    _c("esurveillance_hit", "bool", "channel", True, "flagged by a web crawler or SAFE-like image matching"),
    # conformity claims
    _c("conformity_module", "category", "conformity", True, "NLF module claimed (Decision 768/2008)", CONFORMITY_MODULES),
    _c("nb_required", "bool", "conformity", True, "a notified body is required for this product"),
    _c("notified_body_number", "str", "conformity", True, "fictional 4-digit number 9000-9019; empty for module A", nullable=True),
    _c("ce_mark_present", "bool", "conformity", True, "first-level visual/listing check"),
    _c("ce_mark_format_ok", "bool", "conformity", False, "after the visual check only", nullable=True),
    _c("doc_available", "bool", "conformity", False, "EU declaration of conformity supplied on request; after request", nullable=True),
    _c("instructions_in_dutch", "bool", "conformity", False, "after the check", nullable=True),
    # external signals
    _c("safetygate_similar_alerts_24m", "int", "signals", True, "alerts on similar products in 24 months"),
    _c("safetygate_top_risk_type", "category", "signals", True, "risk type of those alerts (Safety Gate 2024 shares)", RISK_TYPES),
    _c("icsms_prior_record", "bool", "signals", True, "an earlier ICSMS record for the operator"),
    _c("customs_referral", "category", "signals", True, "Reg. (EU) 2019/1020 art. 26 referral", CUSTOMS_REFERRALS),
    # selection
    _c("case_source", "category", "selection", True, "how the case was selected; empty if not selected (AK imp-02)", CASE_SOURCES, nullable=True),
    _c("risk_score", "float", "selection", True, "the score of the selection rule in force at the time"),
    _c("selected_for_inspection", "bool", "selection", True, "selected by any route"),
    # outcome, post-inspection only
    _c("inspection_type", "category", "outcome", False, "765/2008 art. 19", INSPECTION_TYPES, nullable=True),
    _c("noncompliance_formal", "bool", "outcome", False, "CE/DoC/labelling/traceability defects", nullable=True),
    _c("noncompliance_substantive", "bool", "outcome", False, "essential requirements or safety test failed", nullable=True),
    _c("noncompliant_on_inspection", "bool", "outcome", False, "TARGET: formal or substantive; empty if not inspected", nullable=True),
    _c("risk_level", "category", "outcome", False, "RAPEX labels", RISK_LEVELS, nullable=True),
    _c("risk_type", "category", "outcome", False, "as safetygate_top_risk_type", RISK_TYPES, nullable=True),
    _c("measure_taken", "category", "outcome", False, "Safety Gate 'Measures adopted'", MEASURES, nullable=True),
    _c("safetygate_notified", "bool", "outcome", False, "true if risk_level is serious (GPSR art. 25)", nullable=True),
)  # fmt: skip

COLUMN_NAMES = tuple(c.name for c in COLUMNS)
OUTCOME_COLUMNS = tuple(c.name for c in COLUMNS if c.group == "outcome")
POST_SELECTION_COLUMNS = tuple(c.name for c in COLUMNS if not c.at_selection)
SELECTION_COLUMNS = tuple(c.name for c in COLUMNS if c.group == "selection")
TARGET = "noncompliant_on_inspection"
# Fairness groups: tested, never used as model features.
GROUP_COLUMNS = ("operator_legal_form", "operator_size_class", "operator_country_region")


def column(name: str) -> Column:
    for c in COLUMNS:
        if c.name == name:
            return c
    raise KeyError(name)


def country_region(country: str) -> str:
    for region, (_, countries) in COUNTRY_REGIONS.items():
        if country in countries:
            return region
    return "other_non_EU"


assert len(COLUMNS) == 52, len(COLUMNS)
