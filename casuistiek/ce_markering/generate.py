"""Synthetic CE-marking cases: fictional operators, calibrated shares, a random arm, a planted bias.

Rule: everything is drawn from one seeded ``numpy`` generator, vectorised (no Python loop
over rows), so the same ``GenerationParams`` always give the same table, and one million
rows take seconds. The true non-compliance of a case is latent; a label exists only for
inspected cases. Two biases are planted on purpose, so the fairness checks have something
real to find (reference d.5):

* **proxy bias** - sole traders (and non-EU sellers) often leave the GPSR listing
  information incomplete through formatting, which says little about product safety; but
  in risk-selected and reactive inspections inspectors record that as a formal
  non-compliance more often (confirmation bias; AK imp-02 warns against telling them how a
  case was selected). Labels from those arms therefore over-state the risk of incomplete
  listings; the blind random arm does not. A model trained on all labels learns the proxy.
* **process bias** - manual reactive selection prefers operators from outside the EU, so
  the whole selection process over-selects them even where the model does not.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from casuistiek.ce_markering import spec

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd


@dataclass(frozen=True)
class GenerationParams:
    rows: int = 200_000
    seed: int = 20260101
    cases_per_operator: float = 8.0
    base_noncompliance_logit: float = -2.1  # tunable, not a fact: no Dutch base rates were found
    inspection_rate: float = 0.08  # share of cases inspected per month (capacity)
    random_share: float = 0.20  # share of capacity for the random arm (AK imp-02: 10-20 %)
    reactive_share: float = 0.30  # share of capacity for complaints, alerts, customs, accidents
    proxy_true_effect: float = 0.1  # real risk of an incomplete listing (logit): small
    confirmation_bias: float = 0.45  # P(formal finding recorded for an incomplete listing | not random arm)
    manual_bias_non_eu: float = 3.0  # weight of non-EU operators in manual reactive selection
    origin_cn_share: float = spec.ORIGIN_CN_SHARE
    region_shares: dict[str, float] = field(
        default_factory=lambda: {k: v[0] for k, v in spec.COUNTRY_REGIONS.items()}
    )

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> GenerationParams:
        data = dict(data or {})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            from idsp.errors import UserError

            raise UserError(
                f"unknown generation parameter(s) {', '.join(unknown)}",
                where="params.yaml, ce_markering.generate",
                fix=f"Use only: {', '.join(sorted(known))}",
            )
        out = cls(**data)
        if out.rows < 1000:
            from idsp.errors import UserError

            raise UserError(
                f"rows = {out.rows} is too few for a selection with a random arm",
                where="params.yaml, ce_markering.generate.rows",
                fix="Use at least 1000 rows",
            )
        return out

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _choice(rng, n: int, names, probs) -> np.ndarray:
    import numpy as np

    p = np.asarray(probs, dtype=float)
    return np.searchsorted(np.cumsum(p / p.sum()), rng.random(n), side="right").clip(0, len(names) - 1)


def _sigmoid(z):
    import numpy as np

    return 1.0 / (1.0 + np.exp(-z))


def _cat(codes, names) -> pd.Categorical:
    import pandas as pd

    return pd.Categorical.from_codes(codes, categories=list(names))


def _nullable_bool(values, mask) -> pd.arrays.BooleanArray:
    import numpy as np
    import pandas as pd

    return pd.arrays.BooleanArray(np.asarray(values, dtype=bool), ~np.asarray(mask, dtype=bool))


def operators(p: GenerationParams, rng) -> dict[str, np.ndarray]:
    """The fictional operators: attributes, latent quality and history."""
    import numpy as np

    n = max(50, int(p.rows / p.cases_per_operator))
    regions = list(spec.COUNTRY_REGIONS)
    region = _choice(rng, n, regions, [p.region_shares[r] for r in regions])
    country = np.empty(n, dtype=object)
    for i, r in enumerate(regions):
        at = np.flatnonzero(region == i)
        names = list(spec.COUNTRY_REGIONS[r][1])
        country[at] = np.asarray(names, dtype=object)[_choice(rng, len(at), names, list(spec.COUNTRY_REGIONS[r][1].values()))]
    country_code = np.searchsorted(np.asarray(spec.COUNTRIES), country.astype(str))
    nl = region == 0
    eu = region <= 1
    # Legal form: Dutch forms only for Dutch operators (assumption: shares of webshops/traders).
    form = np.full(n, spec.LEGAL_FORMS.index("foreign_entity"))
    form[nl] = _choice(rng, int(nl.sum()), spec.LEGAL_FORMS[:4], [0.32, 0.10, 0.53, 0.05])
    size_probs = {
        "eenmanszaak": [0.85, 0.15, 0, 0], "vof": [0.6, 0.35, 0.05, 0], "bv": [0.3, 0.35, 0.2, 0.15],
        "nv": [0, 0, 0.3, 0.7], "foreign_entity": [0.35, 0.3, 0.2, 0.15],
    }  # fmt: skip
    size = np.zeros(n, dtype=np.int64)
    for i, f in enumerate(spec.LEGAL_FORMS):
        at = np.flatnonzero(form == i)
        size[at] = _choice(rng, len(at), spec.SIZE_CLASSES, size_probs[f])
    sole = form == 0
    role_probs = np.array([
        [0.25, 0.30, 0.05, 0.25, 0.05, 0.10],  # companies
        [0.05, 0.15, 0.0, 0.30, 0.0, 0.50],  # sole traders
        [0.40, 0.05, 0.0, 0.05, 0.0, 0.50],  # non-EU operators
    ])  # fmt: skip
    kind = np.where(sole, 1, np.where(eu, 0, 2))
    role = np.zeros(n, dtype=np.int64)
    for k in range(3):
        at = np.flatnonzero(kind == k)
        role[at] = _choice(rng, len(at), spec.OPERATOR_ROLES, role_probs[k])
    age = np.clip(rng.lognormal(np.where(sole, 1.3, 2.2), 0.8), 0, 60).astype(np.int64)
    quality = rng.normal(0.0, 0.6, n)  # latent: higher = more often non-compliant
    history_rate = 0.15 + 0.25 * size  # larger operators are inspected more often
    prior_insp = rng.poisson(history_rate * np.sqrt(age + 1))
    prior_nc = rng.binomial(prior_insp, _sigmoid(-1.3 + quality))
    days = np.where(prior_insp > 0, rng.integers(20, 1800, n), -1)
    # Synthetic KvK numbers from 90000000 up (8 digits), kept only to key the pseudonym.
    key = hashlib.sha256(f"ce_markering synthetic pseudonym key {p.seed}".encode()).digest()
    kvk = 90_000_000 + rng.permutation(n)
    from idsp.privacy import hmac_many

    pid = [h[:16] for h in hmac_many(key, [f"{k:08d}" for k in kvk.tolist()], workers=1)]
    return {
        "n": n, "region": region, "country": country_code, "form": form, "size": size, "role": role,
        "age": age, "quality": quality, "prior_insp": prior_insp, "prior_nc": prior_nc, "days": days,
        "pid": pid, "eu_rp": np.where(eu, True, rng.random(n) < 0.6),
        "vat_ok": rng.random(n) < np.where(eu, 0.97, 0.85), "icsms": (prior_nc > 0) & (rng.random(n) < 0.6),
    }  # fmt: skip


def generate(params: GenerationParams | dict[str, Any] | None = None) -> pd.DataFrame:
    """One table of ``params.rows`` cases with the 52 columns of ``spec.COLUMNS``.

    The stages below share one dict of arrays and draw from one generator in a fixed order,
    so a seed gives the same table whatever the stages' internals look like.
    """
    import numpy as np

    p = params if isinstance(params, GenerationParams) else GenerationParams.from_dict(params)
    rng = np.random.default_rng(p.seed)
    n = p.rows
    ops = operators(p, rng)
    v: dict[str, Any] = {"p": p, "rng": rng, "n": n, "ops": ops}
    _operators_and_products(v)
    _channels(v)
    _products(v)
    _truth(v)
    _selection(v)
    _inspection_records(v)
    return _table(v)


def _operators_and_products(v: dict[str, Any]) -> None:
    """Which operator, when, what product category and legislation."""
    import numpy as np

    n, ops, rng = v["n"], v["ops"], v["rng"]
    op_weight = np.array([1.0, 2.0, 4.0, 8.0])[ops["size"]]
    op = np.searchsorted(np.cumsum(op_weight / op_weight.sum()), rng.random(n), side="right").clip(0, ops["n"] - 1)
    start = np.datetime64(spec.START_DATE)
    span = int((np.datetime64(spec.END_DATE) - start).astype(int)) + 1
    day = np.sort(np.floor(np.sqrt(rng.random(n)) * span).astype(np.int64))  # volume grows over time
    date = start + day.astype("timedelta64[D]")
    year = date.astype("datetime64[Y]").astype(np.int64) + 1970
    month = (date.astype("datetime64[M]") - start.astype("datetime64[M]")).astype(np.int64)
    cats = spec.CATEGORIES
    cat = _choice(rng, n, spec.CATEGORY_NAMES, [c.share for c in cats])
    cat_arr = lambda attr: np.array([getattr(c, attr) for c in cats])  # noqa: E731
    region, form, size, role = ops["region"][op], ops["form"][op], ops["size"][op], ops["role"][op]
    sole = form == 0
    non_eu = region >= 2
    professional = rng.random(n) < cat_arr("professional_share")[cat]
    auth_cons = np.searchsorted(np.asarray(sorted(spec.AUTHORITIES)), cat_arr("authority")[cat])
    auth_prof = np.searchsorted(np.asarray(sorted(spec.AUTHORITIES)), cat_arr("authority_professional")[cat])
    authority = np.where(professional, auth_prof, auth_cons)
    acts = sorted({c.legislation for c in cats} | {"TOYS;RED;ROHS"})
    legislation = np.searchsorted(np.asarray(acts), cat_arr("legislation"))[cat]
    radio_toy = (cat == spec.CATEGORY_NAMES.index("toy")) & (rng.random(n) < 0.1)
    legislation[radio_toy] = acts.index("TOYS;RED;ROHS")
    v.update(acts=acts, authority=authority, cat=cat, cat_arr=cat_arr, cats=cats, date=date, form=form, legislation=legislation, month=month, non_eu=non_eu, op=op, professional=professional, region=region, role=role, size=size, sole=sole, year=year)  # fmt: skip


def _channels(v: dict[str, Any]) -> None:
    """The sales channel of each case (by operator role) and the marketplace of online ones."""
    import numpy as np

    n, rng, role = v["n"], v["rng"], v["role"]
    channel_probs = np.array([
        [0.30, 0.30, 0.15, 0.25],  # manufacturer
        [0.25, 0.20, 0.20, 0.35],  # importer
        [0.10, 0.10, 0.10, 0.70],  # authorised representative
        [0.45, 0.25, 0.15, 0.15],  # distributor
        [0.00, 0.30, 0.70, 0.00],  # fulfilment service provider
        [0.00, 0.05, 0.95, 0.00],  # marketplace seller
    ])  # fmt: skip
    cum = np.cumsum(channel_probs, axis=1)[role]
    channel = (rng.random(n)[:, None] > cum).sum(axis=1).clip(0, 3)
    online = channel == 2
    marketplace_code = np.where(online, _choice(rng, n, spec.MARKETPLACES, [0.35, 0.25, 0.2, 0.12, 0.08]), -1)
    v.update(channel=channel, marketplace_code=marketplace_code, online=online)  # fmt: skip


def _products(v: dict[str, Any]) -> None:
    """The product: brand, origin, price, listing information, notified body, CE mark, signals."""
    import numpy as np

    cat, cat_arr, cats, n, non_eu, online = v["cat"], v["cat_arr"], v["cats"], v["n"], v["non_eu"], v["online"]
    op, ops, p, region, rng, role = v["op"], v["ops"], v["p"], v["region"], v["rng"], v["role"]
    size, sole = v["size"], v["sole"]
    brand_p = np.where(online[:, None] | non_eu[:, None], [[0.55, 0.25, 0.20]], [[0.20, 0.35, 0.45]])
    brand = (rng.random(n)[:, None] > np.cumsum(brand_p, axis=1)).sum(axis=1).clip(0, 2)
    no_brand = brand == 0
    counterfeit = rng.random(n) < np.where((brand == 2) & online, 0.12, 0.01)
    origin_cn = rng.random(n) < np.where(region == 2, 0.95, np.where(region == 3, 0.3, p.origin_cn_share * 0.85))
    code = {c: i for i, c in enumerate(spec.COUNTRIES)}
    other_origin = np.array([code[c] for c in ("TR", "IN", "US", "VN", "DE", "NL", "IT", "PL", "FR")])
    other_p = [0.1, 0.1, 0.06, 0.06, 0.22, 0.2, 0.1, 0.08, 0.08]
    origin_other = other_origin[_choice(rng, n, other_origin, other_p)]
    own_country = ops["country"][op]
    origin_code = np.where(origin_cn, code["CN"], np.where((region == 3) & (rng.random(n) < 0.6), own_country, origin_other))
    far_origin = np.isin(origin_code, [code["TR"], code["IN"], code["VN"]])
    median = cat_arr("price_median_eur")[cat]
    price = np.round(median * rng.lognormal(np.where(no_brand, -0.35, 0.1) - 0.25 * origin_cn, 0.55), 2)
    cheap = price < 0.4 * median
    ships_code = np.where(
        online & origin_cn & non_eu, code["CN"],
        np.where(non_eu, own_country, np.where(rng.random(n) < 0.9, code["NL"], own_country)),
    )
    # The proxy: incomplete GPSR listing information, driven by who formats the listing.
    gpsr_incomplete = online & (rng.random(n) < _sigmoid(-2.0 + 2.1 * sole + 0.9 * non_eu + 0.4 * (size == 0)))
    nb_required = rng.random(n) < cat_arr("nb_required_share")[cat]
    nb_present = np.where(nb_required, rng.random(n) < 0.9, rng.random(n) < 0.04 + 0.06 * no_brand)
    nb_mismatch = nb_present != nb_required
    nb_number = np.where(nb_present, rng.integers(0, len(spec.FICTIONAL_NOTIFIED_BODIES), n), -1)
    module = np.where(
        nb_required, _choice(rng, n, spec.CONFORMITY_MODULES, [0, 0, 0.3, 0.3, 0.1, 0.1, 0.2]),
        _choice(rng, n, spec.CONFORMITY_MODULES, [0.9, 0.1, 0, 0, 0, 0, 0]),
    )
    ce_mark = rng.random(n) < np.where(no_brand & non_eu, 0.85, 0.97)
    alerts = rng.poisson(0.3 + 0.6 * no_brand + 0.5 * origin_cn + 0.8 * np.maximum(cat_arr("risk")[cat], 0))
    esurv = online & (rng.random(n) < 0.02 + 0.1 * (alerts > 0))
    risk_type = np.zeros(n, dtype=np.int64)
    for i, c in enumerate(cats):
        at = np.flatnonzero(cat == i)
        names = [t for t, _ in c.risk_types]
        codes = np.array([spec.RISK_TYPES.index(t) for t in names])
        risk_type[at] = codes[_choice(rng, len(at), names, [w for _, w in c.risk_types])]
    customs_p = np.where(non_eu & (role == 1) | (non_eu & online), 0.08, 0.005)
    customs = np.where(rng.random(n) < customs_p, _choice(rng, n, spec.CUSTOMS_REFERRALS[1:], [0.3, 0.4, 0.3]) + 1, 0)
    complaints = rng.negative_binomial(0.6, 0.6 / (0.6 + 0.15 + 0.25 * np.exp(ops["quality"][op])))
    v.update(alerts=alerts, brand=brand, ce_mark=ce_mark, cheap=cheap, complaints=complaints, counterfeit=counterfeit, customs=customs, esurv=esurv, far_origin=far_origin, gpsr_incomplete=gpsr_incomplete, module=module, nb_mismatch=nb_mismatch, nb_number=nb_number, nb_required=nb_required, no_brand=no_brand, origin_cn=origin_cn, origin_code=origin_code, price=price, risk_type=risk_type, ships_code=ships_code)  # fmt: skip


def _truth(v: dict[str, Any]) -> None:
    """The latent truth: whether the product is really non-compliant."""
    import numpy as np

    alerts, cat, cat_arr, ce_mark, cheap, complaints = v["alerts"], v["cat"], v["cat_arr"], v["ce_mark"], v["cheap"], v["complaints"]
    counterfeit, customs, far_origin, gpsr_incomplete, n, nb_mismatch = v["counterfeit"], v["customs"], v["far_origin"], v["gpsr_incomplete"], v["n"], v["nb_mismatch"]
    no_brand, op, ops, origin_cn, p, rng = v["no_brand"], v["op"], v["ops"], v["origin_cn"], v["p"], v["rng"]
    z = (
        p.base_noncompliance_logit + cat_arr("risk")[cat] + 0.8 * origin_cn + 0.3 * far_origin
        + 1.2 * nb_mismatch + 1.0 * ~ce_mark + 0.6 * cheap + 0.5 * no_brand + 0.9 * counterfeit
        + 0.35 * np.log1p(ops["prior_nc"][op]) + 0.3 * np.log1p(complaints) + 0.6 * ops["quality"][op]
        + 0.3 * (alerts > 0) + 0.5 * (customs > 0) + p.proxy_true_effect * gpsr_incomplete
        - 0.3 * ops["eu_rp"][op] + rng.normal(0, 0.3, n)
    )  # fmt: skip
    true_nc = rng.random(n) < _sigmoid(z)
    v.update(true_nc=true_nc)  # fmt: skip


def _selection(v: dict[str, Any]) -> None:
    """The selection process month by month: random, reactive (manual) and model-driven picks."""
    import numpy as np

    alerts, cat, cat_arr, cheap, complaints, customs = v["alerts"], v["cat"], v["cat_arr"], v["cheap"], v["complaints"], v["customs"]
    esurv, gpsr_incomplete, month, n, non_eu, op = v["esurv"], v["gpsr_incomplete"], v["month"], v["n"], v["non_eu"], v["op"]
    ops, origin_cn, p, rng = v["ops"], v["origin_cn"], v["p"], v["rng"]
    legacy = _sigmoid(
        -2.5 + 0.3 * np.log1p(ops["prior_nc"][op]) + 0.25 * np.log1p(complaints) + 0.4 * origin_cn
        + 0.9 * gpsr_incomplete + 0.5 * (alerts > 0) + 0.3 * cheap + cat_arr("risk")[cat]
    )  # the rule in force: a points score that counts incomplete listings heavily
    source = np.full(n, -1)
    reactive_kind = np.where(
        customs > 0, 4, np.where(complaints >= 2, 2, np.where((alerts > 0) & esurv, 3, np.where(rng.random(n) < 0.002, 5, -1)))
    )
    manual_weight = np.where(non_eu, p.manual_bias_non_eu, 1.0)
    u_random, u_reactive, u_legacy = rng.random(n), rng.random(n), rng.random(n)
    bounds = np.searchsorted(month, np.arange(month.max() + 2))
    for m in range(len(bounds) - 1):
        lo, hi = bounds[m], bounds[m + 1]
        size_m = hi - lo
        if size_m == 0:
            continue
        capacity = int(round(p.inspection_rate * size_m))
        k_random = int(round(p.random_share * capacity))
        k_reactive = int(round(p.reactive_share * capacity))
        idx = np.arange(lo, hi)
        pick = idx[np.argsort(u_random[lo:hi])[:k_random]]
        source[pick] = 1
        free = idx[source[lo:hi] < 0]
        eligible = free[reactive_kind[free] >= 0]
        # Manual reactive choice: inspectors pick among the signals, preferring non-EU sellers.
        keys = -np.log(u_reactive[eligible]) / manual_weight[eligible]
        chosen = eligible[np.argsort(keys)[:k_reactive]]
        source[chosen] = reactive_kind[chosen]
        free = idx[source[lo:hi] < 0]
        k_model = capacity - k_random - len(chosen)
        noisy = legacy[free] * np.exp(0.2 * (u_legacy[free] - 0.5))
        source[free[np.argsort(-noisy)[: max(k_model, 0)]]] = 0
    campaign = (source == 0) & (rng.random(n) < 0.05)
    source[campaign] = 6
    selected = source >= 0
    random_arm = source == 1
    v.update(legacy=legacy, random_arm=random_arm, selected=selected, source=source)  # fmt: skip


def _inspection_records(v: dict[str, Any]) -> None:
    """What the inspections record: formal and substantive findings, risk level, measure."""
    import numpy as np

    customs, gpsr_incomplete, n, online, p, random_arm = v["customs"], v["gpsr_incomplete"], v["n"], v["online"], v["p"], v["random_arm"]
    rng, selected, true_nc = v["rng"], v["selected"], v["true_nc"]
    substantive_true = true_nc & (rng.random(n) < 0.55)
    formal_true = true_nc & (~substantive_true | (rng.random(n) < 0.4))
    confirmation = selected & ~random_arm & gpsr_incomplete & (rng.random(n) < p.confirmation_bias)
    formal = (formal_true | confirmation) & selected
    substantive = substantive_true & selected
    observed = formal | substantive
    level_p = np.where(substantive[:, None], [[0.12, 0.23, 0.35, 0.30]], [[0.0, 0.05, 0.35, 0.60]])
    level = np.where(observed, (rng.random(n)[:, None] > np.cumsum(level_p, axis=1)).sum(axis=1).clip(0, 3), 4)
    measure_by_level = np.array([4, 3, 2, 1, 0])  # recall, withdrawal, voluntary action, advice, none
    measure = measure_by_level[level]
    measure = np.where(observed & online & (level <= 2) & (rng.random(n) < 0.4), 8, measure)
    measure = np.where(observed & (customs > 0) & (level <= 2), 6, measure)
    measure = np.where(observed & (level == 0) & (rng.random(n) < 0.2), 5, measure)
    measure = np.where(observed & (level == 1) & (rng.random(n) < 0.1), 9, measure)
    inspection = _choice(rng, n, spec.INSPECTION_TYPES, [0.4, 0.35, 0.25])
    v.update(formal=formal, inspection=inspection, level=level, measure=measure, observed=observed, substantive=substantive)  # fmt: skip


def _table(v: dict[str, Any]) -> pd.DataFrame:
    """The 52 columns of ``spec.COLUMNS`` as one frame."""
    import numpy as np
    import pandas as pd

    acts, alerts, authority, brand, cat, cat_arr = v["acts"], v["alerts"], v["authority"], v["brand"], v["cat"], v["cat_arr"]
    cats, ce_mark, channel, complaints, counterfeit, customs = v["cats"], v["ce_mark"], v["channel"], v["complaints"], v["counterfeit"], v["customs"]
    date, esurv, form, formal, gpsr_incomplete, inspection = v["date"], v["esurv"], v["form"], v["formal"], v["gpsr_incomplete"], v["inspection"]
    legacy, legislation, level, marketplace_code, measure, module = v["legacy"], v["legislation"], v["level"], v["marketplace_code"], v["measure"], v["module"]
    n, nb_number, nb_required, observed, op, ops = v["n"], v["nb_number"], v["nb_required"], v["observed"], v["op"], v["ops"]
    origin_code, p, price, professional, risk_type, rng = v["origin_code"], v["p"], v["price"], v["professional"], v["risk_type"], v["rng"]
    role, selected, ships_code, size, source, substantive = v["role"], v["selected"], v["ships_code"], v["size"], v["source"], v["substantive"]
    year = v["year"]
    case_id, gtin = _case_ids_and_gtins(rng, year)
    insp = selected
    frame = pd.DataFrame({
        "case_id": pd.array(case_id, dtype="str"),
        "decision_date": pd.to_datetime(date),
        "operator_pid": pd.Categorical.from_codes(op, categories=ops["pid"]),
        "operator_role": _cat(role, spec.OPERATOR_ROLES),
        "operator_legal_form": _cat(form, spec.LEGAL_FORMS),
        "operator_size_class": _cat(size, spec.SIZE_CLASSES),
        "operator_country": _cat(ops["country"][op], spec.COUNTRIES),
        "eu_responsible_person_present": ops["eu_rp"][op],
        "vat_id_valid": ops["vat_ok"][op],
        "operator_age_years": ops["age"][op],
        "prior_inspections_n": ops["prior_insp"][op],
        "prior_noncompliance_n": ops["prior_nc"][op],
        "days_since_last_inspection": pd.array(np.where(ops["days"][op] >= 0, ops["days"][op], 0), dtype="Int64"),
        "complaints_12m": complaints.astype(np.int64),
        "product_category": _cat(cat, spec.CATEGORY_NAMES),
        "legislation_codes": _cat(legislation, acts),
        "safetygate_category": _cat(np.searchsorted(np.asarray(spec.SAFETYGATE_CATEGORIES), cat_arr("safetygate_category")[cat]), spec.SAFETYGATE_CATEGORIES),
        "product_user": _cat(professional.astype(np.int64), spec.PRODUCT_USERS),
        "competent_authority": _cat(authority, sorted(spec.AUTHORITIES)),
        "hs_code": _cat(cat, [c.hs_code for c in cats]),
        "gtin": pd.array(gtin, dtype="str"),
        "brand_type": _cat(brand, spec.BRAND_TYPES),
        "counterfeit_suspected": counterfeit,
        "price_eur": price,
        "country_of_origin": _cat(origin_code, spec.COUNTRIES),
        "sales_channel": _cat(channel, spec.SALES_CHANNELS),
        "marketplace": _cat(marketplace_code, spec.MARKETPLACES),
        "ships_from_country": _cat(ships_code, spec.COUNTRIES),
        "listing_gpsr_info_complete": ~gpsr_incomplete,
        "esurveillance_hit": esurv,
        "conformity_module": _cat(module, spec.CONFORMITY_MODULES),
        "nb_required": nb_required,
        "notified_body_number": _cat(nb_number, list(spec.FICTIONAL_NOTIFIED_BODIES)),
        "ce_mark_present": ce_mark,
        "ce_mark_format_ok": _nullable_bool(~(formal & (rng.random(n) < 0.5)), insp),
        "doc_available": _nullable_bool(~(formal & (rng.random(n) < 0.4)), insp),
        "instructions_in_dutch": _nullable_bool(~(formal & (rng.random(n) < 0.3)), insp),
        "safetygate_similar_alerts_24m": alerts.astype(np.int64),
        "safetygate_top_risk_type": _cat(risk_type, spec.RISK_TYPES),
        "icsms_prior_record": ops["icsms"][op],
        "customs_referral": _cat(customs, spec.CUSTOMS_REFERRALS),
        "case_source": _cat(source, spec.CASE_SOURCES),
        "risk_score": np.round(legacy, 6),
        "selected_for_inspection": selected,
        "inspection_type": _cat(np.where(insp, inspection, -1), spec.INSPECTION_TYPES),
        "noncompliance_formal": _nullable_bool(formal, insp),
        "noncompliance_substantive": _nullable_bool(substantive, insp),
        "noncompliant_on_inspection": _nullable_bool(observed, insp),
        "risk_level": _cat(np.where(insp, level, -1), spec.RISK_LEVELS),
        "risk_type": _cat(np.where(observed, risk_type, -1), spec.RISK_TYPES),
        "measure_taken": _cat(np.where(insp, measure, -1), spec.MEASURES),
        "safetygate_notified": _nullable_bool(level == 0, insp),
    })  # fmt: skip
    frame["days_since_last_inspection"] = frame["days_since_last_inspection"].mask(ops["days"][op] < 0)
    frame.attrs["generation"] = p.as_dict()
    return frame


def _case_ids_and_gtins(rng: Any, year: Any) -> tuple[Any, Any]:
    """Case numbers ``CE-<year>-<serial>`` and 13-digit GTINs with a valid check digit."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(year)
    order_in_year = np.arange(n) - np.searchsorted(year, year)  # dates are sorted
    case_id = pc.binary_join_element_wise(
        "CE", pc.cast(pa.array(year), pa.string()),
        pc.utf8_lpad(pc.cast(pa.array(order_in_year + 1), pa.string()), 6, "0"), "-",
    )
    gtin_body = rng.integers(200_000_000_000, 300_000_000_000, n, dtype=np.int64)
    digits = (gtin_body[:, None] // 10 ** np.arange(11, -1, -1)) % 10
    check = (10 - (digits * np.tile([1, 3], 6)).sum(axis=1) % 10) % 10
    gtin = pc.cast(pa.array(gtin_body * 10 + check), pa.string())
    return case_id, gtin
