"""The one identifier check for text: is this name, value, line or text file free of raw identifiers?

Rule: the privacy scan (free-text cells), the pre-commit hook (``idsp data scan`` on text
files) and the MLflow guard ask this module and nothing else, so they cannot disagree.
A text holds an identifier when one of its tokens is a BSN (9 digits, elfproef; also
written 1234.56.782 or 123 456 782), an IBAN (mod 97, upper-case country), an e-mail
address or a Dutch phone number; a KvK number (any 8 digits) only in KvK context: the
name says so (``kvk_context``) or a KvK word (kvk, handelsregister, coc) stands just
before it. Quotes, ``%`` and ``+`` (other than the ``+31`` of a phone number) around a
token are not part of it, so ``'123456782'`` and ``%123456782`` are a BSN. Decimals
(0.123456789, 1e-05; not ``111222333.`` at a sentence's end) are numbers, not identifiers. The rule is line-local,
so a file checked whole and checked line by line gives the same answer. A text file
over ``MAX_TEXT_BYTES`` is refused, never passed unchecked. Findings are masked.
"""

from __future__ import annotations

import re
from pathlib import Path

from idsp.errors import PIIFound
from idsp.privacy.validators import KINDS, mask

# One limit for every text the check reads. It reads a file whole, at about 20 MiB/s of
# code or prose and 2 MiB/s of number-dense text (one core), so this bounds a commit or a
# log call to seconds; a text file this large belongs in DVC or in a summary anyway.
MAX_TEXT_BYTES = 20 * 1024 * 1024
BINARY_PROBE_BYTES = 8192  # a NUL byte in the first 8 KiB: a binary file, not text

SPECIFIC = ("email", "iban", "phone", "bsn")  # the order in which a token is tried
KVK_HINTS = KINDS["kvk"].hints

# Identifiers written with inner spaces or dashes ("NL91 ABNA 0417 1643 00", "06-12345678",
# "123 456 782"); only spaces and tabs join them: an identifier never runs over a line break.
_SPACED = re.compile(
    r"\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b"  # IBAN
    r"|(?<![\w.-])(?:\+31|0031|0)[1-9](?:[ \t-]?[0-9]){8}(?![\w-])"  # phone
    r"|(?<![\w.-])[0-9]{3}([ .-])[0-9]{3}\1[0-9]{3}(?![\w.-])"  # BSN as 123 456 782
)
# An e-mail address inside punctuation a token keeps ("jan@voorbeeld.nl." at a sentence's end).
_EMAIL = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# Whole tokens: split on everything an identifier cannot contain (spaces, =, /, :, brackets,
# double quotes). ', % and + may stand inside an e-mail address, so they stay in a token but
# are stripped from its ends (``_strip``) and split its parts.
_SPLIT = re.compile(r"[^A-Za-z0-9@.+_%'-]+")
_PARTS = re.compile(r"[_\-.'%+]")
_QUOTES = "'%+"
# What every identifier has: an @, or eight digits with at most one character between each
# (06-12345678, 1234.56.782, NL91 ABNA 0417 1643 00, kvk 1234 5678). Text without it is clean.
MAYBE_IDENTIFIER = r"@|[0-9](?:[^0-9]?[0-9]){7}"
_MAYBE = re.compile(MAYBE_IDENTIFIER)
_NO_DIGITS = str.maketrans("", "", "0123456789")
_KVK_IN_CONTEXT = re.compile(
    r"(?i:kvk|handelsregister|coc)[^0-9\n]{0,30}?(?<![0-9])([0-9]{8}|[0-9]{4} [0-9]{4}|[0-9]{2}(?: [0-9]{2}){3})(?![0-9])"
)


# A number, not an identifier: a digit after the point or an exponent (float() also takes
# "111222333.", a BSN at the end of a sentence).
DECIMAL = r"[+-]?(?:[0-9]*\.[0-9]+(?:[eE][+-]?[0-9]+)?|[0-9]+\.?[eE][+-]?[0-9]+)"
_DECIMAL = re.compile(DECIMAL)


class TooLargeToCheck(PIIFound):
    """A text too large to be shown free of identifiers is refused as if it held them."""


def find_identifiers(text: str, *, kvk_context: bool = False) -> list[tuple[str, str]]:
    """Raw identifiers in a piece of text: [(kind, masked value)], each value once, in text
    order; empty when clean.

    ``kvk_context`` says the text belongs to a name about KvK numbers (a column
    ``kvk_nummer``, a parameter ``kvk``): then any 8-digit token is one.
    """
    text = str(text)
    if not _MAYBE.search(text):  # most lines of code and prose: nothing to look at
        return []
    found: dict[str, str] = {}  # masked -> kind
    candidates = dict.fromkeys(_embedded(text))
    candidates.update(dict.fromkeys(_tokens(text)))
    for token in candidates:
        kind = _specific_kind(token)
        if kind is None and kvk_context and KINDS["kvk"].check(token):
            kind = "kvk"
        if kind:
            found.setdefault(mask(token, kind), kind)
    lowered = text.lower()
    if any(hint in lowered for hint in KVK_HINTS):
        for match in _KVK_IN_CONTEXT.finditer(text):
            if KINDS["kvk"].check(match.group(1)):
                found.setdefault(mask(match.group(1), "kvk"), "kvk")
    return [(kind, masked) for masked, kind in found.items()]


def _embedded(text: str) -> list[str]:
    """Identifiers written with inner spaces, and e-mail addresses inside punctuation."""
    found = [m.group(0) for m in _SPACED.finditer(text)]
    if "@" in text:  # the e-mail pattern is the slow one: it tries every word
        found += [m.group(0) for m in _EMAIL.finditer(text)]
    return found


def _tokens(text: str) -> list[str]:
    """Whole tokens that could be an identifier, and such parts of ``_``/``-``/``.``-joined ones."""
    out = []
    for token in _SPLIT.split(text):
        token = _strip(token)
        if len(token) < 8 or not _could_be(token) or is_decimal(token):
            continue
        out.append(token)
        if "@" not in token:
            out += [p for p in _PARTS.split(token) if len(p) >= 8 and p != token and _could_be(p)]
    return out


def _strip(token: str) -> str:
    """A token without the quotes, % and + around it and a full stop after it; the + of a
    leading +31 (a phone number) stays."""
    if "@" in token:  # ' % + may belong to an e-mail address; _EMAIL finds it inside them
        return token
    core = token.rstrip(_QUOTES + ".").lstrip(_QUOTES)  # and the full stop of a sentence
    if core.startswith("31") and token[: len(token) - len(token.lstrip(_QUOTES))].endswith("+"):
        return "+" + core
    return core


def _could_be(token: str) -> bool:
    """Every identifier has an @ (e-mail) or at least eight digits (all the others)."""
    return "@" in token or len(token) - len(token.translate(_NO_DIGITS)) >= 8


def _specific_kind(token: str) -> str | None:
    """The specific kind a token is, tried in ``SPECIFIC`` order; cheap first-character
    tests keep the exact checks for the few candidates."""
    first = token[:1]
    if "@" in token:
        return "email" if KINDS["email"].check(token) else None
    # Random letters and digits pass mod 97 one time in 97, so in text an IBAN starts
    # upper-case (not hex run ids) and is plain or grouped by spaces (not ZK-2026-000012345).
    if token[:2].isupper() and token.replace(" ", "").isalnum() and KINDS["iban"].check(token):
        return "iban"
    if first in "+0" and KINDS["phone"].check(token):
        return "phone"
    # A lost leading zero (8 digits) is a BSN only as a whole value, in a table cell:
    # in text one in eleven 8-digit counts and dates passes the elfproef.
    if first.isdigit() and not (token.isdigit() and len(token) != 9) and KINDS["bsn"].check(token):
        return "bsn"
    return None


def is_decimal(token: str) -> bool:
    """0.123456789 and 1e-05 are numbers: without the dot it would look like a phone number.
    ``111222333.`` is not: a point needs a digit after it (or an exponent)."""
    return _DECIMAL.fullmatch(token) is not None


def kvk_named(name: str) -> bool:
    """Whether a name (column, parameter, tag) is about KvK numbers."""
    return any(h in name.lower() for h in KVK_HINTS)


def scrub(text: str, limit: int = 4000, *, kvk_context: bool = False) -> str:
    """A message (or a column name) safe to store: every identifier the check finds replaced
    by its masked form."""
    out = str(text)
    tokens = set(_embedded(out)) | set(_tokens(out))
    kvks = set()
    if any(hint in out.lower() for hint in KVK_HINTS):
        kvks = {m.group(1) for m in _KVK_IN_CONTEXT.finditer(out) if KINDS["kvk"].check(m.group(1))}
    for token in sorted(tokens | kvks, key=len, reverse=True):  # "NL91 ABNA ..." before its parts
        kind = _specific_kind(token)
        if kind is None and (kvk_context or token in kvks) and KINDS["kvk"].check(token):
            kind = "kvk"
        if kind:
            out = out.replace(token, mask(token, kind))
    return out[:limit]


def read_text(path: Path) -> str | None:
    """A file's text for the check; None for a binary file; ``TooLargeToCheck`` over the limit.

    One open handle and at most ``MAX_TEXT_BYTES`` + 1 bytes read, so a file that grows
    while it is read is refused rather than read without bound."""
    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(BINARY_PROBE_BYTES)
        if b"\0" in head:
            return None
        data = head + fh.read(max(MAX_TEXT_BYTES + 1 - len(head), 0))
    if len(data) > MAX_TEXT_BYTES:
        raise TooLargeToCheck(
            f"more than the {MAX_TEXT_BYTES // 2**20} MiB of text the identifier check reads "
            f"({max(path.stat().st_size, len(data)) / 2**20:.1f} MiB), so it cannot be shown free of raw identifiers",
            where=str(path),
            fix="Keep large data out of git and MLflow: track it with DVC (`dvc add`), "
            "or commit and log a summary or a pseudonymised extract instead",
        )
    return data.decode("utf-8", errors="replace")
