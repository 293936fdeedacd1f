"""Identifiers: recognise them, find them in tables, and replace them by keyed pseudonyms.

Rule: nothing here returns, prints or stores a raw identifier except masked (``*****6782``);
pseudonyms are HMAC-SHA256 under the key of one pseudonymisation domain, and results carry
the key id, never the key. Every validator takes one value or a pandas Series (then it
answers with a boolean Series, computed on the distinct values only).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Mapping, Sequence
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


def _vectorised(check: Callable[[Any], bool]) -> Callable[[Any], Any]:
    def validator(value: Any) -> Any:
        if _is_series(value):
            import numpy as np
            import pandas as pd

            codes, uniques = pd.factorize(value, use_na_sentinel=True)
            ok = np.fromiter((check(u) for u in uniques), dtype=bool, count=len(uniques))
            result = np.zeros(len(value), dtype=bool)
            present = codes >= 0
            result[present] = ok[codes[present]]
            return pd.Series(result, index=value.index, name=value.name)
        return check(value)

    validator.__name__ = check.__name__.strip("_").removesuffix("_ok")
    validator.__doc__ = check.__doc__
    return validator


def _is_series(value: Any) -> bool:
    return type(value).__name__ == "Series" and hasattr(value, "index")


is_bsn = _vectorised(_bsn_ok)
is_bsn.__doc__ = "BSN (and RSIN): 9 digits after zero-padding, elfproef (9..2, -1), not all zeros."
is_rsin = is_bsn
is_iban = _vectorised(_iban_ok)
is_iban.__doc__ = "IBAN: country, check digits, account; mod-97 check equals 1 (NL: 18 characters)."
is_kvk = _vectorised(_kvk_ok)
is_kvk.__doc__ = "KvK number: exactly 8 digits (there is no check digit)."
is_postcode = _vectorised(_postcode_ok)
is_postcode.__doc__ = "Dutch postcode '1234 AB' (space optional, SA/SD/SS not issued)."
is_phone_nl = _vectorised(_phone_ok)
is_phone_nl.__doc__ = "Dutch phone number: 0, +31 or 0031 and nine digits, or 0800/090x service numbers."
is_email = _vectorised(_email_ok)
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
        texts = [_text(u) or "" for u in uniques]
        name = str(column).lower()
        for kind in KINDS.values():
            ok = np.fromiter((kind.check(t) for t in texts), dtype=bool, count=len(texts))
            count = int(counts[ok].sum())
            if not count:
                continue
            share = count / total
            named = any(h in name for h in kind.hints)
            if kind.specific or named or share >= min_share:
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
        block = secret.ljust(64, b"\0") if len(secret) <= 64 else hashlib.sha256(secret).digest().ljust(64, b"\0")
        self.inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self.outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def hexdigests(self, values: Sequence[str]) -> list[str]:
        inner, outer = self.inner, self.outer
        out = []
        append = out.append
        for value in values:
            i = inner.copy()
            i.update(value.encode())
            o = outer.copy()
            o.update(i.digest())
            append(o.hexdigest())
        return out


_WORKER: _Hmac | None = None


def _init_worker(secret: bytes) -> None:
    global _WORKER
    _WORKER = _Hmac(secret)


def _work(chunk: list[str]) -> list[str]:
    assert _WORKER is not None
    return _WORKER.hexdigests(chunk)


def hmac_many(secret: bytes, values: Sequence[str], workers: int | None = None) -> list[str]:
    """Hex HMAC-SHA256 of many strings; large inputs are split over the CPU cores."""
    workers = workers or os.cpu_count() or 1
    if workers <= 1 or len(values) < PARALLEL_THRESHOLD:
        return _Hmac(secret).hexdigests(values)
    import multiprocessing as mp

    size = -(-len(values) // (workers * 4))
    chunks = [list(values[i : i + size]) for i in range(0, len(values), size)]
    ctx = mp.get_context("fork")
    with ctx.Pool(workers, initializer=_init_worker, initargs=(secret,)) as pool:
        parts = pool.map(_work, chunks)
    return [h for part in parts for h in part]


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
    import pandas as pd

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
        codes, uniques = pd.factorize(df[column], use_na_sentinel=True)
        if kind == "text":
            normal = [_text(u) for u in uniques]
        else:
            spec = KINDS[kind]
            normal = [spec.normalise(u) if spec.check(u) else None for u in uniques]
        valid = np.fromiter((n is not None for n in normal), dtype=bool, count=len(normal))
        hashed = hmac_many(key.secret, [n for n in normal if n is not None], workers)
        table = np.empty(len(uniques) + 1, dtype=object)
        table[-1] = None  # missing stays missing
        table[:-1][valid] = hashed
        table[:-1][~valid] = None
        result = table[codes]  # code -1 picks the last slot
        out[column] = pd.Series(result, index=df.index, dtype="string")
        bad = np.flatnonzero((codes >= 0) & ~valid[np.maximum(codes, 0)])
        if len(bad):
            invalid[column] = bad.tolist()
        done[column] = int(((codes >= 0) & valid[np.maximum(codes, 0)]).sum())
    report = PseudonymisationReport(domain, key.key_id, kinds, done, invalid)
    out.attrs["idsp.pseudonymisation"] = report.as_dict() | {"invalid": {k: len(v) for k, v in invalid.items()}}
    return Pseudonymised(out, report)
