"""Generated identifiers for tests: they follow the rules, and belong to nobody."""

from __future__ import annotations

import random

WEIGHTS = (9, 8, 7, 6, 5, 4, 3, 2, -1)


def elfproef_sum(digits: str) -> int:
    return sum(int(d) * w for d, w in zip(digits, WEIGHTS, strict=True))


def make_bsn(rng: random.Random, valid: bool = True) -> str:
    """A generated 9-digit number that passes (or fails) the elfproef."""
    while True:
        digits = f"{rng.randrange(1, 10**9):09d}"
        if (elfproef_sum(digits) % 11 == 0) == valid:
            return digits


def make_iban(rng: random.Random) -> str:
    """A generated Dutch-shaped IBAN with correct mod-97 check digits."""
    bank = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(4))
    account = f"{rng.randrange(10**10):010d}"
    number = int("".join(str(int(c, 36)) for c in bank + account + "NL00"))
    return f"NL{98 - number % 97:02d}{bank}{account}"
