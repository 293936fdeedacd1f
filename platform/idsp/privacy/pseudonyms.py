"""Keyed pseudonymisation of identifier columns: ``idsp.privacy.pseudonymise``.

Rule: pseudonyms are HMAC-SHA256 under the key of one pseudonymisation domain; values are
normalised first, so one identifier written two ways gets one pseudonym; invalid values
become empty and are reported by row, never hashed; results carry the key id, never the
key. No Python string is made per row on the fast paths (plain digit columns, repeated
values).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from idsp.errors import UserError
from idsp.keys import KeyStore
from idsp.privacy.hashing import fixed_messages, hex_digests, text_messages
from idsp.privacy.validators import BSN_WEIGHTS, KINDS, Validator, as_text

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from idsp.keys import DomainKey


@dataclass(frozen=True)
class PseudonymisationReport:
    domain: str
    key_id: str
    columns: dict[str, str]  # column -> kind used for normalisation
    pseudonymised: dict[str, int]
    invalid: dict[str, list[int]]  # column -> row positions (0-based) of invalid values

    @property
    def invalid_count(self) -> int:
        return sum(len(v) for v in self.invalid.values())

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"invalid_count": self.invalid_count}


@dataclass(frozen=True)
class Pseudonymised:
    frame: pd.DataFrame
    report: PseudonymisationReport


def guess_kind(series: pd.Series) -> str:
    """The identifier kind most of the column's values are, else 'text'."""
    sample = series.dropna()
    if sample.empty:
        return "text"
    sample = sample.sample(min(len(sample), 5000), random_state=0) if len(sample) > 5000 else sample
    best, best_share = "text", 0.0
    for kind in KINDS.values():
        share = float(kind.check(sample).mean())
        if share > best_share:
            best, best_share = kind.name, share
    return best if best_share >= 0.5 else "text"


_DIGIT_WIDTH = {"bsn": (8, 9), "kvk": (8, 8)}  # accepted lengths of plain digit strings


def _mostly_distinct(numbers) -> bool:
    """Whether most rows hold a value no other row holds, judged from a sample: then
    finding the distinct values first costs more than hashing the repeats.

    With a sample drawn with replacement, the share of pairs that agree estimates the sum
    of squared value shares, whose inverse is the effective number of distinct values.
    """
    import numpy as np

    size = 100_000
    sample = numbers[np.random.default_rng(0).integers(0, len(numbers), size)]
    _, counts = np.unique(sample, return_counts=True)
    pairs = float((counts * (counts - 1)).sum()) / 2
    effective = size * (size - 1) / 2 / pairs if pairs else float("inf")
    return effective >= 0.6 * len(numbers)


def _factorize(series: pd.Series, kind: str):
    """(codes, distinct values), code -1 for missing.

    A column of a digit kind that holds plain digit strings only is factorised as
    integers: ten times faster than hashing strings, and values that differ only by
    leading zeros (which normalise to the same identifier) share one code. When nearly
    every value is distinct (the sample says so), each row gets its own code.
    """
    import numpy as np
    import pandas as pd

    widths = _DIGIT_WIDTH.get(kind)
    if widths is not None and pd.api.types.is_string_dtype(series) and len(series) > 100_000:
        import pyarrow as pa
        import pyarrow.compute as pc

        arr = pa.array(series, from_pandas=True)
        if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
            low, width = widths
            lengths = pc.min_max(pc.binary_length(arr)).as_py()
            plain = (
                lengths["min"] is not None
                and low <= lengths["min"] <= lengths["max"] <= width
                and pc.all(pc.fill_null(pc.ascii_is_decimal(arr), True)).as_py()
            )
            if plain:
                # at most 9 digits: int32 holds them, and hashes twice as fast as int64
                numbers = pc.cast(arr, pa.int32())
                numbers = (pc.fill_null(numbers, -1) if numbers.null_count else numbers).to_numpy()
                if _mostly_distinct(numbers):
                    present = numbers != -1
                    codes = np.where(present, np.cumsum(present) - 1, -1)
                    return codes, _PackedDigits.from_ints(numbers[present], width, kind, distinct=False)
                codes, ints = pd.factorize(numbers)
                missing = ints == -1
                if missing.any():
                    slot = int(np.flatnonzero(missing)[0])
                    codes = np.where(codes == slot, -1, codes - (codes > slot))
                    ints = ints[~missing]
                return codes, _PackedDigits.from_ints(ints, width, kind)
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    return codes, np.asarray(uniques, dtype=object)


@dataclass(frozen=True)
class _PackedDigits:
    """Distinct digit identifiers as integers: validity by arithmetic, and the valid ones
    as zero-padded ASCII packed back to back, ready for hashing without Python strings."""

    valid: Any  # bool array, one per value
    packed: bytes
    width: int
    distinct: bool  # the values differ from each other (they came from factorize)

    def __len__(self) -> int:
        return len(self.valid)

    @classmethod
    def from_ints(cls, ints, width: int, kind: str, distinct: bool = True) -> _PackedDigits:
        import numpy as np

        digits = np.empty((len(ints), width), dtype=np.uint8)
        rest = ints.astype(np.int64)
        for position in range(width - 1, -1, -1):
            digits[:, position] = rest % 10
            rest = rest // 10
        valid = ints > 0
        if kind == "bsn":
            valid &= (digits.astype(np.int64) @ np.array(BSN_WEIGHTS, dtype=np.int64)) % 11 == 0
        return cls(valid, (digits[valid] + 48).tobytes(), width, distinct)


def _hash_distinct(uniques, kind: str, secret: bytes, workers: int | None):
    """(valid flags, hex digests of the valid values in order, 64 bytes each) for the values."""
    import numpy as np

    normalise: Callable[[Any], str | None]
    check: Validator | None
    if isinstance(uniques, _PackedDigits):
        packed, width = uniques.packed, uniques.width
        return uniques.valid, hex_digests(secret, len(packed) // width, fixed_messages(packed, width), workers)
    if kind == "text":
        quick = _text_fast(uniques)
        normalise, check = as_text, None
    else:
        spec = KINDS[kind]
        quick = spec.check.fast(uniques) if spec.check.fast else None
        normalise, check = spec.normalise, spec.check
    if quick is not None:
        valid, normal = quick
        chosen = normal[valid].tolist()
        return valid, hex_digests(secret, len(chosen), text_messages(chosen), workers)
    normal = [normalise(u) if check is None or check(u) else None for u in uniques]
    valid = np.fromiter((n is not None for n in normal), dtype=bool, count=len(normal))
    chosen = [n for n in normal if n is not None]
    return valid, hex_digests(secret, len(chosen), text_messages(chosen), workers)


def _pseudonym_column(codes, valid, keep, hexed, index, unique: bool = False) -> pd.Series:
    """Row ``i`` gets the pseudonym of value ``codes[i]``; rows not in ``keep`` (missing,
    code -1, or invalid) stay missing. ``hexed`` holds the 64-byte hex pseudonyms of the
    valid values; ``unique`` says they are known to differ (distinct integers, zero-padded
    alike).

    Where values repeat (at least two rows per value on average) the column is a pandas
    Categorical: each pseudonym is stored once. Otherwise it is pandas' Arrow-backed
    string dtype, its buffers built with numpy. Neither makes a Python string per row.
    """
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    rows = len(codes)
    if not valid.any():  # nothing to hash: every value missing or invalid
        return pd.Series(pa.nulls(rows, pa.large_string()), index=index, dtype="str")
    pseudonyms = pa.LargeStringArray.from_buffers(
        len(hexed) // 64, pa.py_buffer(np.arange(0, len(hexed) + 1, 64, dtype=np.int64)), pa.py_buffer(hexed))
    if len(valid) == rows and valid.all() and (rows == 0 or codes[0] == 0):
        # one code per row, all present and valid: the codes are 0, 1, 2, ... in order
        return pd.Series(pseudonyms, index=index, dtype="str")
    position = np.cumsum(valid, dtype=np.int32) - 1  # index into `pseudonyms` of each valid value
    safe = np.maximum(codes, 0)
    if rows >= 2 * len(valid):
        if unique:
            final = codes.astype(np.int32) if keep.all() else np.where(keep, position[safe], -1)
        else:  # pseudonyms of distinct inputs can coincide when the inputs normalise alike
            links, pseudonyms = pd.factorize(pd.Series(pseudonyms, dtype="str"))
            final = np.where(keep, links.astype(np.int32)[position[safe]], -1)
        kind = pd.CategoricalDtype(pd.Index(pseudonyms, dtype="str"))
        return pd.Series(pd.Categorical.from_codes(final, dtype=kind, validate=False), index=index)
    data = np.take(np.frombuffer(hexed, dtype="S64"), position[safe][keep])
    offsets = np.zeros(rows + 1, dtype=np.int64)
    np.cumsum(keep * 64, out=offsets[1:])
    validity = None if keep.all() else pa.py_buffer(np.packbits(keep, bitorder="little"))
    column = pa.LargeStringArray.from_buffers(rows, pa.py_buffer(offsets), pa.py_buffer(data), validity)
    return pd.Series(column, index=index, dtype="str")


def pseudonymise(
    df: pd.DataFrame,
    columns: Sequence[str] | Mapping[str, str],
    domain: str,
    *,
    keystore: KeyStore | None = None,
    key: DomainKey | None = None,
    workers: int | None = None,
) -> Pseudonymised:
    """Replace identifier columns by HMAC-SHA256 pseudonyms under the domain's key.

    ``columns`` is a list (kind guessed per column) or a mapping column -> kind (one of
    ``KINDS`` or ``"text"``). Values are normalised first (spaces, dots, dashes removed;
    BSN zero-padded), so ``"1234.56.782"`` and ``"123456782"`` get the same pseudonym.
    Invalid identifiers become empty and are listed in the report, never hashed.
    """
    import numpy as np

    if key is None:
        key = (keystore or KeyStore.from_config()).load(domain)
    elif key.domain != domain:
        raise UserError(f"the key given is for domain {key.domain!r}, not {domain!r}")
    wanted = dict(columns) if isinstance(columns, Mapping) else {c: "" for c in columns}
    missing = [c for c in wanted if c not in df.columns]
    if missing:
        raise UserError(
            f"column(s) {', '.join(map(repr, missing))} not in the table",
            fix=f"Choose from: {', '.join(map(str, df.columns))}",
        )
    out = df.copy()
    kinds: dict[str, str] = {}
    done: dict[str, int] = {}
    invalid: dict[str, list[int]] = {}
    for column, kind in wanted.items():
        kind = kind or guess_kind(df[column])
        if kind != "text" and kind not in KINDS:
            raise UserError(f"unknown identifier kind {kind!r} for column {column!r}",
                            fix=f"Use one of: {', '.join(KINDS)}, text")
        kinds[column] = kind
        codes, uniques = _factorize(df[column], kind)
        valid, hexed = _hash_distinct(uniques, kind, key.secret, workers)
        present = codes >= 0
        ok = present & valid[np.maximum(codes, 0)] if len(valid) else np.zeros(len(codes), dtype=bool)
        out[column] = _pseudonym_column(codes, valid, ok, hexed, df.index, unique=getattr(uniques, "distinct", False))
        bad = np.flatnonzero(present & ~ok)
        if len(bad):
            invalid[column] = bad.tolist()
        done[column] = int(ok.sum())
    report = PseudonymisationReport(domain, key.key_id, kinds, done, invalid)
    out.attrs["idsp.pseudonymisation"] = report.as_dict() | {"invalid": {k: len(v) for k, v in invalid.items()}}
    return Pseudonymised(out, report)


def _text_fast(uniques: Any):
    """(ok, stripped) for distinct string values; None if not all are strings."""
    import numpy as np
    import pandas as pd

    if len(uniques) == 0 or pd.api.types.infer_dtype(uniques, skipna=False) != "string":
        return None
    stripped = pd.Series(uniques, dtype=object).str.strip().to_numpy(dtype=object)
    return stripped != "", np.asarray(stripped, dtype=object)
