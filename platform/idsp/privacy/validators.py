"""Identifier kinds: recognise, normalise and mask one value, or a whole pandas Series.

Rule: every validator takes one value or a Series (then it answers with a boolean Series,
computed on the distinct values only), and nothing here returns a raw identifier except
masked (``*****6782``). ``KINDS`` is the one table of kinds the scan, the identifier check
and pseudonymisation read.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_SEPARATORS = re.compile(r"[\s.\-]")
# How BSNs are written in the wild: plain, 1234.56.782, 123 456 782 / 123-456-782.
_BSN_SHAPE = re.compile(r"^(\d{8,9}|\d{4}[. ]\d{2}[. ]\d{3}|\d{3}([ .-])\d{3}\2\d{3})$")
_KVK_SHAPE = re.compile(r"^(\d{8}|\d{2} ?\d{2} ?\d{2} ?\d{2}|\d{4} \d{4})$")
BSN_WEIGHTS = (9, 8, 7, 6, 5, 4, 3, 2, -1)
_POSTCODE = re.compile(r"^[1-9][0-9]{3} ?(?!SA|SD|SS)[A-Z]{2}$")
_EMAIL = re.compile(r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")
_PHONE = re.compile(r"^(?:(?:\+31|0031|0)[1-9][0-9]{8}|0(?:800|90[069])[0-9]{4,7})$")
_IBAN = re.compile(r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$")


# -- normalisation -------------------------------------------------------------------------


def as_text(value: Any) -> str | None:
    """The value as stripped text; None for what cannot hold an identifier (missing,
    empty, a fraction, a boolean). A whole float such as 123456782.0 is its integer."""
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
    text = as_text(value)
    if text is None:
        return None
    digits = _SEPARATORS.sub("", text)
    if not digits.isdigit() or not digits.isascii():
        return None
    return digits.zfill(width) if width and len(digits) < width else digits


def normalise_iban(value: Any) -> str | None:
    text = as_text(value)
    return None if text is None else _SEPARATORS.sub("", text).upper()


def normalise_phone(value: Any) -> str | None:
    text = as_text(value)
    return None if text is None else re.sub(r"[\s.\-()/]", "", text)


def normalise_postcode(value: Any) -> str | None:
    text = as_text(value)
    if text is None:
        return None
    text = re.sub(r"\s+", "", text).upper()
    return f"{text[:4]} {text[4:]}" if len(text) == 6 else text


def normalise_email(value: Any) -> str | None:
    text = as_text(value)
    return None if text is None else text.lower()


# -- scalar checks ---------------------------------------------------------------------------


def _bsn_ok(value: Any) -> bool:
    text = as_text(value)
    if text is None or not _BSN_SHAPE.match(text):
        return False
    digits = normalise_number(text)
    if digits is None or not 8 <= len(digits) <= 9:
        return False
    digits = digits.zfill(9)
    if digits == "000000000":
        return False
    return sum(int(d) * w for d, w in zip(digits, BSN_WEIGHTS, strict=True)) % 11 == 0


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
    text = as_text(value)
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
    text = as_text(value)
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
        ascii_digits = np.frombuffer("".join(normal[ok]).encode("ascii"), dtype=np.uint8)
        matrix = ascii_digits.reshape(-1, width).astype(np.int64) - 48
        ok[np.flatnonzero(ok)] = (matrix @ np.array(weights, dtype=np.int64)) % 11 == 0
    # Only values written with separators can still be valid: a plain digit string of the
    # wrong length is not (so a column of 10-digit phone numbers costs no per-value check).
    odd = ~digits & text.str.fullmatch(r"[0-9][0-9 .\-]{7,12}").fillna(False).to_numpy(dtype=bool)
    for i in np.flatnonzero(odd):
        if check(uniques[i]):
            ok[i] = True
            normal[i] = normalise_number(uniques[i], width)
    return ok, normal


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


class Validator:
    """The check of one identifier kind, over one value or a whole Series.

    ``fast`` (vectorised check and normalisation of distinct strings, or None when the
    values are not all strings) is what pseudonymisation reuses; ``many`` checks an
    array of distinct values.
    """

    def __init__(self, check: Callable[[Any], bool], fast: Callable[[Any], Any] | None = None,
                 prefilter: str | None = None, doc: str = ""):
        self.check = check
        self.fast = fast
        self.prefilter = prefilter
        self.__name__ = check.__name__.strip("_").removesuffix("_ok")
        self.__doc__ = doc

    def many(self, uniques: Any) -> Any:
        return _check_many(self.check, self.fast, self.prefilter, uniques)

    def __call__(self, value: Any) -> Any:
        if not _is_series(value):
            return self.check(value)
        import numpy as np
        import pandas as pd

        codes, uniques = pd.factorize(value, use_na_sentinel=True)
        ok = self.many(np.asarray(uniques, dtype=object))
        result = np.zeros(len(value), dtype=bool)
        present = codes >= 0
        result[present] = ok[codes[present]]
        return pd.Series(result, index=value.index, name=value.name)


def _is_series(value: Any) -> bool:
    return type(value).__name__ == "Series" and hasattr(value, "index")


def _bsn_fast(uniques):
    return _digits_fast(uniques, _bsn_ok, 9, 8, BSN_WEIGHTS)


def _kvk_fast(uniques):
    return _digits_fast(uniques, _kvk_ok, 8, 8, None)


is_bsn = Validator(_bsn_ok, _bsn_fast,
                   doc="BSN (and RSIN): 9 digits after zero-padding, elfproef (9..2, -1), not all zeros.")
is_rsin = is_bsn
is_iban = Validator(_iban_ok, prefilter=r"\s*[A-Za-z]{2}\s*[0-9]{2}",
                    doc="IBAN: country, check digits, account; mod-97 check equals 1 (NL: 18 characters).")
is_kvk = Validator(_kvk_ok, _kvk_fast, doc="KvK number: exactly 8 digits (there is no check digit).")
is_postcode = Validator(_postcode_ok, prefilter=r"\s*[1-9][0-9]{3}\s*[A-Za-z]{2}\s*$",
                        doc="Dutch postcode '1234 AB' (space optional, SA/SD/SS not issued).")
is_phone_nl = Validator(_phone_ok, prefilter=r"\s*(\+|00|0|\(0)[0-9 .\-()/]{6,18}\s*$",
                        doc="Dutch phone number: 0, +31 or 0031 and nine digits, or 0800/090x service numbers.")
is_email = Validator(_email_ok, prefilter=r"[^@\s]+@", doc="E-mail address of the usual form name@domain.tld.")


@dataclass(frozen=True)
class Kind:
    name: str
    check: Validator
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
    text = as_text(value) or ""
    if kind == "email" or "@" in text:
        local, _, domain = text.partition("@")
        return f"{local[:1]}***@{domain[:1]}***" if domain else "***"
    if kind == "postcode":
        return f"{text[:2]}** **"
    keep = 2 if len(text) >= 6 else 0
    return "*" * (len(text) - keep) + text[len(text) - keep :]

