"""Identifiers: recognise them, find them in tables and text, replace them by keyed pseudonyms.

Rule: nothing here returns, prints or stores a raw identifier except masked (``*****6782``);
pseudonyms are HMAC-SHA256 under the key of one pseudonymisation domain, and results carry
the key id, never the key. Whether a text or file is free of identifiers is decided in one
place, ``idsp.privacy.check``, for the scan, the pre-commit hook and the MLflow guard alike.

The modules, lowest first: ``validators`` (the kinds: BSN elfproef, KvK, IBAN mod 97,
e-mail, phone, postcode), ``check`` (the text rule and its size limit), ``tables`` (the
column scan), ``hashing`` and ``pseudonyms`` (keyed pseudonymisation).
"""

from __future__ import annotations

from idsp.privacy.check import (
    MAX_TEXT_BYTES,
    TooLargeToCheck,
    find_identifiers,
    kvk_named,
    read_text,
    scrub,
)
from idsp.privacy.hashing import PARALLEL_THRESHOLD, hmac_many, idle_cores
from idsp.privacy.pseudonyms import PseudonymisationReport, Pseudonymised, guess_kind, pseudonymise
from idsp.privacy.tables import Finding, scan
from idsp.privacy.validators import (
    KINDS,
    Kind,
    Validator,
    as_text,
    is_bsn,
    is_email,
    is_iban,
    is_kvk,
    is_phone_nl,
    is_postcode,
    is_rsin,
    mask,
    normalise_email,
    normalise_iban,
    normalise_number,
    normalise_phone,
    normalise_postcode,
)

__all__ = [
    "KINDS", "MAX_TEXT_BYTES", "PARALLEL_THRESHOLD", "Finding", "Kind", "Pseudonymised",
    "PseudonymisationReport", "TooLargeToCheck", "Validator", "as_text", "find_identifiers", "guess_kind",
    "hmac_many", "idle_cores", "is_bsn", "is_email", "is_iban", "is_kvk", "is_phone_nl", "is_postcode",
    "is_rsin", "kvk_named", "mask", "normalise_email", "normalise_iban", "normalise_number",
    "normalise_phone", "normalise_postcode", "pseudonymise", "read_text", "scan", "scrub",
]  # fmt: skip
