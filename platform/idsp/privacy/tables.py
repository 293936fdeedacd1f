"""Finding identifiers in a table, column by column: ``idsp.privacy.scan``.

Rule: specific kinds (BSN with elfproef, IBAN, e-mail, phone) are reported from one hit
on; shape-only kinds (KvK: any 8 digits; postcode) when at least ``min_share`` of the
column has that shape or the column name says so. Cells that are not themselves an
identifier are searched for embedded ones by the one text check
(``idsp.privacy.check.find_identifiers``), so a cell and the same text logged to MLflow
or committed in a file get the same answer. Findings carry masked examples only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from idsp.privacy.check import MAYBE_IDENTIFIER, find_identifiers, kvk_named
from idsp.privacy.validators import KINDS, as_text, mask

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

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
        found, whole = _whole_values(str(column), texts, counts, total, min_share, examples)
        findings += found
        reported = {f.kind for f in found}
        for kind, (count, sample) in _embedded(str(column), texts, counts, whole, examples).items():
            if kind not in reported:
                findings.append(Finding(str(column), kind, count, round(count / total, 4), tuple(sample), True))
    return findings


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
    import pandas as pd

    if not texts:
        return {}
    maybe = pd.Series(texts, dtype=object).str.contains(MAYBE_IDENTIFIER, regex=True).to_numpy(dtype=bool)
    context = kvk_named(column)
    found: dict[str, list] = {}
    for i in np.flatnonzero(maybe & ~whole):
        for kind, masked in find_identifiers(texts[i], kvk_context=context):
            slot = found.setdefault(kind, [0, []])
            slot[0] += int(counts[i])
            if len(slot[1]) < examples:
                slot[1].append(masked)
    return found
