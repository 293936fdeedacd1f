"""Defaults that several schemas and renderers share, each set once.

Rule: a value that more than one part of the distribution uses as its default lives here,
with the reason in ``docs/decisions/``; the schemas use it as their field default and the
renderers show what it resolves to, so no two places can disagree. This module imports
nothing: it is the lowest layer, readable from ``idsp.config`` up to ``legal_ethics``.
"""

from __future__ import annotations

# The distribution's version (pyproject.toml says the same; a test compares them). Here, not
# in ``idsp/__init__``, so the CLI and the deploy renderer read it without the public API.
VERSION = "0.1.0"

# How long an approval of a checklist is valid: the three-year DPIA review cycle
# (docs/decisions/ethics-bindings-and-validity.md). case.yaml ``policy`` and platform.yaml
# ``ethics`` may shorten it, never lengthen it.
APPROVAL_VALID_DAYS = 1095
# The longest validity any of them may write: ten years, the upper bound of a review cycle
# anyone has asked for; beyond it an approval is no longer a review.
APPROVAL_VALID_DAYS_MAX = 3650

# The case type of a case without a case kit (``casuistiek.KITS`` lists the others).
GENERIC_CASE_TYPE = "generic"

__all__ = ["VERSION", "APPROVAL_VALID_DAYS", "APPROVAL_VALID_DAYS_MAX", "GENERIC_CASE_TYPE"]
