"""Finding identifiers in a table, column by column: ``idsp.privacy.scan``.

Rule: specific kinds (BSN with elfproef, IBAN, e-mail, phone) are reported from one hit
on; shape-only kinds (KvK: any 8 digits; postcode) when at least ``min_share`` of the
column has that shape or the column name says so. Cells that are not themselves an
identifier are searched for embedded ones by the one text check
(``idsp.privacy.check.find_identifiers``), so a cell and the same text logged to MLflow
or committed in a file get the same answer; so is every column name (a pivoted table has
BSNs as column names), with the KvK context from the name itself. Findings carry masked
examples only, and a column name holding an identifier is reported in its masked form.
Which cells need the text check is decided in bulk first (``_candidates``): most cells
that merely have eight digits (order numbers, dates, decimals, hex ids) cannot hold one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from idsp.privacy.check import (
    DECIMAL,
    KVK_HINTS,
    MAYBE_IDENTIFIER,
    find_identifiers,
    kvk_named,
    scrub,
)
from idsp.privacy.validators import KINDS, as_text, mask

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

# What a cell needs for the text check to find anything in it, beyond MAYBE_IDENTIFIER: an @,
# an IBAN start, a BSN (nine digits on their own, or 1234.56.782 / 123 456 782 at a token's
# start), a phone number (ten digits on their own; with spaces, dots or dashes at a token's
# start; 0800/090x numbers have eight), or a KvK word. A superset, so the verdicts are the
# text check's: this only spares it the cells (ORD-2026-00012345, dates) it finds nothing in.
_ALONE, _START, _S = r"(?:^|[^A-Za-z0-9])", r"(?:^|[^A-Za-z0-9_.-])", r"[ \t.-]*"
_NEEDED = (
    r"@|[A-Z]{2}[0-9]{2}"
    rf"|{_ALONE}[0-9]{{9}}(?:$|[^A-Za-z0-9])|{_START}(?:[0-9]{{4}}\.[0-9]{{2}}\.|[0-9]{{3}}[ .-][0-9]{{3}}[ .-])[0-9]{{3}}"
    rf"|{_ALONE}(?:0031|0)[1-9][0-9]{{8}}|{_ALONE}0(?:800|90[069])[0-9]{{4}}"
    rf"|{_START}(?:\+{_S}3{_S}1|0{_S}0{_S}3{_S}1|0){_S}[1-9](?:{_S}[0-9]){{8}}"
    rf"|{_START}0{_S}(?:8{_S}0{_S}0|9{_S}0{_S}[069])(?:{_S}[0-9]){{4}}"
    r"|(?i:" + "|".join(KVK_HINTS) + ")"
)
_KVK_WORD = "(?i:" + "|".join(KVK_HINTS) + ")"
# One token of letters and digits: the whole-value check has judged it already (unless it
# holds a KvK word, as kvk12345678 does).
_ONE_TOKEN = r"[A-Za-z0-9]+"
# A decimal finds nothing, except a phone number in it (0612345678.5): the phone part of
# the check's ``_SPACED``.
_PHONE_IN = r"(?<![\w.-])(?:\+31|0031|0)[1-9](?:[ \t-]?[0-9]){8}(?![\w-])"

@dataclass(frozen=True)
class Finding:
    column: str
    kind: str
    count: int
    share: float
    examples: tuple[str, ...] = field(default_factory=tuple)
    embedded: bool = False  # found inside free text rather than as whole values

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"examples": list(self.examples)}


def _texts_of(uniques: Any) -> list[str]:
    """Distinct values as stripped text ("" for what is not an identifier-like value)."""
    import pandas as pd

    kind = pd.api.types.infer_dtype(uniques, skipna=False)
    if kind == "string":
        return pd.Series(uniques, dtype=object).str.strip().tolist()
    if kind == "integer":
        return [str(u) for u in uniques.tolist()]
    return [as_text(u) or "" for u in uniques]


def scan(df: pd.DataFrame, *, min_share: float = 0.5, examples: int = 3) -> list[Finding]:
    """Find identifiers per column: kind, count, share of non-empty cells, masked examples."""
    import numpy as np
    import pandas as pd

    findings: list[Finding] = []
    for column in df.columns:
        name, label = str(column), _label(column)
        findings += [Finding(label, kind, 1, 0.0, (f"column name: {masked}",), True)
                     for kind, masked in find_identifiers(name, kvk_context=kvk_named(name))]
        series = df[column]
        if pd.api.types.is_float_dtype(series) or pd.api.types.is_bool_dtype(series):
            continue
        if pd.api.types.is_datetime64_any_dtype(series):
            continue
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
        present = codes >= 0
        total = int(present.sum())
        if total == 0:
            continue
        counts = np.bincount(codes[present], minlength=len(uniques))
        texts = _texts_of(np.asarray(uniques, dtype=object))
        found, whole = _whole_values(name, texts, counts, total, min_share, examples)
        findings += [Finding(label, f.kind, f.count, f.share, f.examples) for f in found]
        reported = {f.kind for f in found}
        for kind, (count, sample) in _embedded(name, texts, counts, whole, examples).items():
            if kind not in reported:
                findings.append(Finding(label, kind, count, round(count / total, 4), tuple(sample), True))
    return findings


def _label(column: Any) -> str:
    """The column's name for a finding: masked where it holds an identifier."""
    return scrub(str(column), limit=200, kvk_context=kvk_named(str(column)))


def _whole_values(column: str, texts: list[str], counts: Any, total: int, min_share: float,
                  examples: int) -> tuple[list[Finding], Any]:
    """Findings of cells that are identifiers as a whole, and which distinct values those are."""
    import numpy as np

    name = column.lower()
    values = np.asarray(texts, dtype=object)
    hits = {}
    any_hit = np.zeros(len(values), dtype=bool)
    for kind in KINDS.values():
        ok = kind.check.many(values)
        any_hit |= ok
        count = int(counts[ok].sum())
        if count:
            hits[kind.name] = (ok, count, count / total)
    dominant = any(share >= min_share for _, _, share in hits.values())
    findings = []
    for kind_name, (ok, count, share) in hits.items():
        kind = KINDS[kind_name]
        named = any(h in name for h in kind.hints)
        # In a column that mostly holds one kind, look-alikes of another kind are
        # coincidences (a BSN that happens to be phone-shaped); report dominant kinds.
        if share >= min_share or named or (kind.specific and not dominant):
            sample = [mask(texts[i], kind.name) for i in np.flatnonzero(ok)[:examples]]
            findings.append(Finding(column, kind.name, count, round(share, 4), tuple(sample)))
    return findings, any_hit


def _embedded(column: str, texts: list[str], counts: Any, whole: Any, examples: int) -> dict[str, list]:
    """{kind: [rows, masked examples]} of identifiers inside cells that are not one whole."""
    import numpy as np

    if not texts:
        return {}
    found: dict[str, list] = {}
    context = kvk_named(column)
    for i in _candidates(texts, np.flatnonzero(~whole), context):
        for kind, masked in find_identifiers(texts[i], kvk_context=context):
            slot = found.setdefault(kind, [0, []])
            slot[0] += int(counts[i])
            if len(slot[1]) < examples:
                slot[1].append(masked)
    return found


def _candidates(texts: list[str], index: Any, kvk_context: bool) -> Any:
    """The distinct values (positions in ``texts``) the text check could find something in;
    each test reads only the cells the one before kept. Arrow strings (RE2) where they can
    hold the texts: about twice as fast as Python's re over object cells."""
    import pandas as pd

    try:
        cells = pd.Series([texts[i] for i in index], dtype="string[pyarrow]")
    except Exception:  # e.g. lone surrogates from a file read with errors="surrogateescape"
        cells = pd.Series([texts[i] for i in index], dtype=object)
    for pattern in (MAYBE_IDENTIFIER, None if kvk_context else _NEEDED):
        if pattern is None or len(cells) == 0:  # in a KvK column any 8 digits in a part count
            continue
        ok = cells.str.contains(pattern, regex=True).to_numpy(dtype=bool)
        index, cells = index[ok], cells[ok]
    if len(cells) == 0:
        return index
    one_token = cells.str.fullmatch(f"(?:{_ONE_TOKEN})").to_numpy(dtype=bool)
    one_token &= ~cells.str.contains(_KVK_WORD, regex=True).to_numpy(dtype=bool)
    number = cells.str.fullmatch(f"(?:{DECIMAL})").to_numpy(dtype=bool)  # (?:) as arrow adds ^ and $
    if number.any():  # the phone test looks behind, which RE2 cannot: Python's re for these few
        number[number] = ~cells[number].astype(object).str.contains(_PHONE_IN, regex=True).to_numpy(dtype=bool)
    return index[~one_token & ~number]
