"""Identifiers: recognise them, find them in tables, and replace them by keyed pseudonyms.

Rule: nothing here returns, prints or stores a raw identifier except masked (``*****6782``);
pseudonyms are HMAC-SHA256 under the key of one pseudonymisation domain, and results carry
the key id, never the key. Every validator takes one value or a pandas Series (then it
answers with a boolean Series, computed on the distinct values only).
"""

from __future__ import annotations

import binascii
import hashlib
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from idsp.errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from idsp.keys import DomainKey, KeyStore

_SEPARATORS = re.compile(r"[\s.\-]")
# How BSNs are written in the wild: plain, 1234.56.782, 123 456 782 / 123-456-782.
_BSN_SHAPE = re.compile(r"^(\d{8,9}|\d{4}[. ]\d{2}[. ]\d{3}|\d{3}([ .-])\d{3}\2\d{3})$")
_KVK_SHAPE = re.compile(r"^(\d{8}|\d{2} ?\d{2} ?\d{2} ?\d{2}|\d{4} \d{4})$")
_BSN_WEIGHTS = (9, 8, 7, 6, 5, 4, 3, 2, -1)
_POSTCODE = re.compile(r"^[1-9][0-9]{3} ?(?!SA|SD|SS)[A-Z]{2}$")
_EMAIL = re.compile(r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")
_PHONE = re.compile(r"^(?:(?:\+31|0031|0)[1-9][0-9]{8}|0(?:800|90[069])[0-9]{4,7})$")
_IBAN = re.compile(r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$")


# -- normalisation -------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float):
        if value != value or not value.is_integer():  # NaN or a fraction
            return None
        value = int(value)
    if isinstance(value, bool):
        return None
    text = str(value).strip()
    return text or None


def normalise_number(value: Any, width: int | None = None) -> str | None:
    """Digits only (spaces, dots and dashes removed), zero-padded to ``width``."""
    text = _text(value)
    if text is None:
        return None
    digits = _SEPARATORS.sub("", text)
    if not digits.isdigit() or not digits.isascii():
        return None
    return digits.zfill(width) if width and len(digits) < width else digits


def normalise_iban(value: Any) -> str | None:
    text = _text(value)
    return None if text is None else _SEPARATORS.sub("", text).upper()


def normalise_phone(value: Any) -> str | None:
    text = _text(value)
    return None if text is None else re.sub(r"[\s.\-()/]", "", text)


def normalise_postcode(value: Any) -> str | None:
    text = _text(value)
    if text is None:
        return None
    text = re.sub(r"\s+", "", text).upper()
    return f"{text[:4]} {text[4:]}" if len(text) == 6 else text


def normalise_email(value: Any) -> str | None:
    text = _text(value)
    return None if text is None else text.lower()


# -- scalar checks ---------------------------------------------------------------------------


def _bsn_ok(value: Any) -> bool:
    text = _text(value)
    if text is None or not _BSN_SHAPE.match(text):
        return False
    digits = normalise_number(text)
    if digits is None or not 8 <= len(digits) <= 9:
        return False
    digits = digits.zfill(9)
    if digits == "000000000":
        return False
    return sum(int(d) * w for d, w in zip(digits, _BSN_WEIGHTS, strict=True)) % 11 == 0


def _iban_ok(value: Any) -> bool:
    text = normalise_iban(value)
    if text is None or not _IBAN.match(text):
        return False
    if text.startswith("NL") and not re.match(r"^NL[0-9]{2}[A-Z]{4}[0-9]{10}$", text):
        return False
    rearranged = text[4:] + text[:4]
    number = "".join(str(int(c, 36)) for c in rearranged)
    return int(number) % 97 == 1


def _kvk_ok(value: Any) -> bool:
    text = _text(value)
    if text is None or not _KVK_SHAPE.match(text):
        return False
    digits = normalise_number(text)
    return digits is not None and len(digits) == 8 and digits != "00000000"


def _postcode_ok(value: Any) -> bool:
    text = normalise_postcode(value)
    return text is not None and bool(_POSTCODE.match(text))


def _phone_ok(value: Any) -> bool:
    text = normalise_phone(value)
    return text is not None and bool(_PHONE.match(text))


def _email_ok(value: Any) -> bool:
    text = _text(value)
    return text is not None and len(text) <= 254 and bool(_EMAIL.match(text))


def _digits_fast(uniques: Any, check: Callable[[Any], bool], width: int, min_width: int, weights: tuple | None):
    """Vectorised check and normalisation of digit identifiers over distinct string values.

    Plain digit strings (the common case) are checked with array arithmetic; the few
    written with separators go through the per-value check. Returns (ok, normalised)
    arrays, or None when the values are not all strings (the per-value path then
    handles ints, floats and mixed columns).
    """
    import numpy as np
    import pandas as pd

    if len(uniques) == 0 or pd.api.types.infer_dtype(uniques, skipna=False) != "string":
        return None
    text = pd.Series(uniques, dtype="string").str.strip()
    lengths = text.str.len()
    digits = text.str.isdigit().to_numpy(dtype=bool)
    plain = digits & ((lengths >= min_width) & (lengths <= width)).to_numpy(dtype=bool)
    normal = text.str.zfill(width).to_numpy(dtype=object)
    ok = plain & (normal != "0" * width)
    if weights is not None and ok.any():
        matrix = np.frombuffer("".join(normal[ok]).encode("ascii"), dtype=np.uint8)
        matrix = matrix.reshape(-1, width).astype(np.int64) - 48
        ok[np.flatnonzero(ok)] = (matrix @ np.array(weights, dtype=np.int64)) % 11 == 0
    # Only values written with separators can still be valid: a plain digit string of the
    # wrong length is not (so a column of 10-digit phone numbers costs no per-value check).
    odd = ~digits & text.str.fullmatch(r"[0-9][0-9 .\-]{7,12}").fillna(False).to_numpy(dtype=bool)
    for i in np.flatnonzero(odd):
        if check(uniques[i]):
            ok[i] = True
            normal[i] = normalise_number(uniques[i], width)
    return ok, normal


def _text_fast(uniques: Any):
    """(ok, stripped) for distinct string values; None if not all are strings."""
    import numpy as np
    import pandas as pd

    if len(uniques) == 0 or pd.api.types.infer_dtype(uniques, skipna=False) != "string":
        return None
    stripped = pd.Series(uniques, dtype=object).str.strip().to_numpy(dtype=object)
    return stripped != "", np.asarray(stripped, dtype=object)


def _check_many(check: Callable[[Any], bool], fast: Callable | None, prefilter: str | None, uniques):
    """The check over an array of distinct values: vectorised where possible.

    ``prefilter`` is a loose regular expression that every valid value matches; it is run
    by pandas over the whole array, so the exact per-value check sees only candidates.
    """
    import numpy as np
    import pandas as pd

    quick = fast(uniques) if fast else None
    if quick is not None:
        return quick[0]
    if prefilter is None or pd.api.types.infer_dtype(uniques, skipna=False) != "string":
        return np.fromiter((check(u) for u in uniques), dtype=bool, count=len(uniques))
    candidates = pd.Series(uniques, dtype=object).str.match(prefilter).to_numpy(dtype=bool)
    ok = np.zeros(len(uniques), dtype=bool)
    idx = np.flatnonzero(candidates)
    ok[idx] = np.fromiter((check(u) for u in uniques[idx]), dtype=bool, count=len(idx))
    return ok


def _vectorised(
    check: Callable[[Any], bool], fast: Callable | None = None, prefilter: str | None = None
) -> Callable[[Any], Any]:
    def many(uniques):
        return _check_many(check, fast, prefilter, uniques)

    def validator(value: Any) -> Any:
        if _is_series(value):
            import numpy as np
            import pandas as pd

            codes, uniques = pd.factorize(value, use_na_sentinel=True)
            ok = many(np.asarray(uniques, dtype=object))
            result = np.zeros(len(value), dtype=bool)
            present = codes >= 0
            result[present] = ok[codes[present]]
            return pd.Series(result, index=value.index, name=value.name)
        return check(value)

    validator.__name__ = check.__name__.strip("_").removesuffix("_ok")
    validator.fast = fast
    validator.many = many
    validator.__doc__ = check.__doc__
    return validator


def _is_series(value: Any) -> bool:
    return type(value).__name__ == "Series" and hasattr(value, "index")


def _bsn_fast(uniques):
    return _digits_fast(uniques, _bsn_ok, 9, 8, _BSN_WEIGHTS)


def _kvk_fast(uniques):
    return _digits_fast(uniques, _kvk_ok, 8, 8, None)


is_bsn = _vectorised(_bsn_ok, _bsn_fast)
is_bsn.__doc__ = "BSN (and RSIN): 9 digits after zero-padding, elfproef (9..2, -1), not all zeros."
is_rsin = is_bsn
is_iban = _vectorised(_iban_ok, prefilter=r"\s*[A-Za-z]{2}\s*[0-9]{2}")
is_iban.__doc__ = "IBAN: country, check digits, account; mod-97 check equals 1 (NL: 18 characters)."
is_kvk = _vectorised(_kvk_ok, _kvk_fast)
is_kvk.__doc__ = "KvK number: exactly 8 digits (there is no check digit)."
is_postcode = _vectorised(_postcode_ok, prefilter=r"\s*[1-9][0-9]{3}\s*[A-Za-z]{2}\s*$")
is_postcode.__doc__ = "Dutch postcode '1234 AB' (space optional, SA/SD/SS not issued)."
is_phone_nl = _vectorised(_phone_ok, prefilter=r"\s*(\+|00|0|\(0)[0-9 .\-()/]{6,18}\s*$")
is_phone_nl.__doc__ = "Dutch phone number: 0, +31 or 0031 and nine digits, or 0800/090x service numbers."
is_email = _vectorised(_email_ok, prefilter=r"[^@\s]+@")
is_email.__doc__ = "E-mail address of the usual form name@domain.tld."


@dataclass(frozen=True)
class Kind:
    name: str
    check: Callable[[Any], Any]
    normalise: Callable[[Any], str | None]
    specific: bool  # False: many innocent values look alike (any 8 digits is a KvK shape)
    hints: tuple[str, ...]


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("bsn", is_bsn, lambda v: normalise_number(v, 9), True, ("bsn", "sofi", "burgerservice", "rsin")),
        Kind("iban", is_iban, normalise_iban, True, ("iban", "rekening", "account")),
        Kind("email", is_email, normalise_email, True, ("mail",)),
        Kind("phone", is_phone_nl, normalise_phone, True, ("tel", "phone", "mobiel", "gsm")),
        Kind("kvk", is_kvk, lambda v: normalise_number(v, 8), False, ("kvk", "handelsregister", "coc")),
        Kind("postcode", is_postcode, normalise_postcode, False, ("postcode", "zip", "pc6")),
    )
}


# -- masking ---------------------------------------------------------------------------------


def mask(value: Any, kind: str | None = None) -> str:
    """Show just enough to recognise a value in a report, never the identifier itself."""
    text = _text(value) or ""
    if kind == "email" or "@" in text:
        local, _, domain = text.partition("@")
        return f"{local[:1]}***@{domain[:1]}***" if domain else "***"
    if kind == "postcode":
        return f"{text[:2]}** **"
    keep = 2 if len(text) >= 6 else 0
    return "*" * (len(text) - keep) + text[len(text) - keep :]


# -- scanning --------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"  # e-mail
    r"|\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b"  # IBAN
    r"|(?<![\w.-])(?:\+31|0031|0)[1-9](?:[\s-]?[0-9]){8}(?![\w-])"  # phone
    r"|(?<![\w.-])[0-9]{9}(?![\w.-])"  # BSN-shaped
)


def find_in_text(text: str) -> list[tuple[str, str]]:
    """Identifiers embedded in free text: [(kind, masked value)], specific kinds only."""
    found = []
    for match in _TOKEN.finditer(text or ""):
        token = match.group(0)
        for kind in ("email", "iban", "phone", "bsn"):
            if KINDS[kind].check(token):
                found.append((kind, mask(token, kind)))
                break
    return found


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


def _texts_of(uniques):
    """Distinct values as stripped text ("" for what is not an identifier-like value)."""
    import pandas as pd

    kind = pd.api.types.infer_dtype(uniques, skipna=False)
    if kind == "string":
        return pd.Series(uniques, dtype=object).str.strip().tolist()
    if kind == "integer":
        return [str(u) for u in uniques.tolist()]
    return [_text(u) or "" for u in uniques]


def scan(df: pd.DataFrame, *, min_share: float = 0.5, examples: int = 3) -> list[Finding]:
    """Find identifiers per column: kind, count, share of non-empty cells, masked examples.

    Specific kinds (BSN with elfproef, IBAN, e-mail, phone) are reported from one hit on;
    shape-only kinds (KvK: any 8 digits; postcode) when at least ``min_share`` of the
    column has that shape or the column name says so. Free-text columns are also searched
    for embedded specific identifiers.
    """
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
        name = str(column).lower()
        values = np.asarray(texts, dtype=object)
        hits = {}
        for kind in KINDS.values():
            ok = kind.check.many(values)
            count = int(counts[ok].sum())
            if count:
                hits[kind.name] = (ok, count, count / total)
        dominant = any(share >= min_share for _, _, share in hits.values())
        for kind_name, (ok, count, share) in hits.items():
            kind = KINDS[kind_name]
            named = any(h in name for h in kind.hints)
            # In a column that mostly holds one kind, look-alikes of another kind are
            # coincidences (a BSN that happens to be phone-shaped); report dominant kinds.
            report = share >= min_share or named or (kind.specific and not dominant)
            if report:
                sample = [mask(texts[i], kind.name) for i in np.flatnonzero(ok)[:examples]]
                findings.append(Finding(str(column), kind.name, count, round(share, 4), tuple(sample)))
        if any(" " in t for t in texts):  # free text: look inside
            embedded: dict[str, list] = {}
            for i, t in enumerate(texts):
                if len(t) < 9 or " " not in t:
                    continue
                for kind_name, masked in find_in_text(t):
                    slot = embedded.setdefault(kind_name, [0, []])
                    slot[0] += int(counts[i])
                    if len(slot[1]) < examples:
                        slot[1].append(masked)
            whole = {f.kind for f in findings if f.column == str(column)}
            for kind_name, (count, sample) in embedded.items():
                if kind_name not in whole:
                    findings.append(
                        Finding(str(column), kind_name, count, round(count / total, 4), tuple(sample), True)
                    )
    return findings


# -- pseudonymisation ------------------------------------------------------------------------

PARALLEL_THRESHOLD = 200_000


class _Hmac:
    """HMAC-SHA256 with the key's inner and outer pads hashed once (RFC 2104)."""

    def __init__(self, secret: bytes):
        block = secret if len(secret) <= 64 else hashlib.sha256(secret).digest()
        block = block.ljust(64, b"\0")
        self.inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self.outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def digests(self, messages: Iterable[bytes | memoryview]) -> bytes:
        """The 32-byte digests of all messages, concatenated."""
        inner, outer = self.inner.copy, self.outer.copy
        out = []
        append = out.append
        for message in messages:
            i = inner()
            i.update(message)
            o = outer()
            o.update(i.digest())
            append(o.digest())
        return b"".join(out)


# The job of the forked workers, set just before they fork so that they inherit it (and the
# values it reads) instead of receiving it pickled; each task is only a (start, stop) range.
_JOB: Callable[[int, int], None] | None = None
_JOB_LOCK = threading.Lock()  # one forked hashing job at a time per process


def _run_job(bounds: tuple[int, int]) -> None:
    assert _JOB is not None
    _JOB(*bounds)


def _hex_digests(secret: bytes, count: int, messages: Callable[[int, int], Iterable[bytes | memoryview]],
                 workers: int | None) -> memoryview:
    """The hex HMAC-SHA256 digests of messages ``0 .. count-1``, 64 ASCII bytes each, back
    to back. ``messages(start, stop)`` yields the messages of a range.

    Large inputs are split in ranges over forked worker processes when cores are idle
    (hashlib keeps the GIL for short inputs, so threads would not help); each worker
    writes its hex digests straight into a shared anonymous memory map, so nothing is
    pickled, sent back or joined.
    """
    global _JOB
    import mmap

    hasher = _Hmac(secret)
    out = mmap.mmap(-1, max(64 * count, 1))  # anonymous and shared with forked children

    def job(start: int, stop: int) -> None:
        out[64 * start : 64 * stop] = binascii.hexlify(hasher.digests(messages(start, stop)))

    workers = workers or idle_cores()
    if workers <= 1 or count < PARALLEL_THRESHOLD:
        job(0, count)
    else:
        import multiprocessing as mp

        size = -(-count // (workers * 4))
        with _JOB_LOCK:
            _JOB = job
            try:
                with mp.get_context("fork").Pool(workers) as pool:
                    pool.map(_run_job, [(i, min(i + size, count)) for i in range(0, count, size)])
            finally:
                _JOB = None
    return memoryview(out)[: 64 * count]


def _text_messages(values: Sequence[str]) -> Callable[[int, int], Iterable[bytes]]:
    return lambda start, stop: (value.encode() for value in values[start:stop])


def _fixed_messages(packed: bytes, width: int) -> Callable[[int, int], Iterable[memoryview]]:
    view = memoryview(packed)
    return lambda start, stop: (view[i : i + width] for i in range(start * width, stop * width, width))


def idle_cores() -> int:
    """Cores not already busy (1-minute load average): extra processes on a loaded
    machine only add overhead."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        busy = os.getloadavg()[0]
    except OSError:
        busy = 0.0
    busy = max(0.0, busy - 1.0)  # the calling process itself is one of the busy ones
    return max(1, min(cores, int(cores - busy + 0.5)))


def hmac_many(secret: bytes, values: Sequence[str], workers: int | None = None) -> list[str]:
    """Hex HMAC-SHA256 of many strings; large inputs are split over the idle CPU cores."""
    text = str(_hex_digests(secret, len(values), _text_messages(values), workers), "ascii")
    return [text[i : i + 64] for i in range(0, len(text), 64)]


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
            valid &= (digits.astype(np.int64) @ np.array(_BSN_WEIGHTS, dtype=np.int64)) % 11 == 0
        return cls(valid, (digits[valid] + 48).tobytes(), width, distinct)


def _hash_distinct(uniques, kind: str, secret: bytes, workers: int | None):
    """(valid flags, hex digests of the valid values in order, 64 bytes each) for the values."""
    import numpy as np

    if isinstance(uniques, _PackedDigits):
        packed, width = uniques.packed, uniques.width
        return uniques.valid, _hex_digests(secret, len(packed) // width, _fixed_messages(packed, width), workers)
    if kind == "text":
        quick = _text_fast(uniques)
        normalise, check = _text, None
    else:
        spec = KINDS[kind]
        fast = getattr(spec.check, "fast", None)
        quick = fast(uniques) if fast else None
        normalise, check = spec.normalise, spec.check
    if quick is not None:
        valid, normal = quick
        chosen = normal[valid].tolist()
        return valid, _hex_digests(secret, len(chosen), _text_messages(chosen), workers)
    normal = [normalise(u) if check is None or check(u) else None for u in uniques]
    valid = np.fromiter((n is not None for n in normal), dtype=bool, count=len(normal))
    chosen = [n for n in normal if n is not None]
    return valid, _hex_digests(secret, len(chosen), _text_messages(chosen), workers)


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

    from idsp.keys import KeyStore

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
