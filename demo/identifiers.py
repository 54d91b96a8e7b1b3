"""Generation and validation of the UK public-sector identifiers used by the demo federation.

Every generator here only produces identifiers from ranges reserved for testing, so synthetic data can
never collide with a real person's record:

* NHS numbers from the ``999`` range, with a modulus-11 check digit;
* National Insurance numbers with the ``QQ`` prefix, which HMRC never issues;
* Unique Pupil Numbers (UPNs) with a modulus-23 check letter, as in DfE's UPN specification.

All functions are pure: generators draw their randomness from the ``random.Random`` passed in.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator

NHS_TEST_PREFIX = "999"
"""First three digits of the NHS numbers reserved for testing."""

_NHS_WEIGHTS = range(10, 1, -1)  # 10, 9, ..., 2 over the first nine digits

NINO_TEST_PREFIX = "QQ"
"""NINO prefix reserved for testing (never issued by HMRC)."""

NINO_SUFFIXES = "ABCD"
_NINO_PATTERN = re.compile(r"^([A-Z]{2})([0-9]{6})([A-D])$")
_NINO_FORBIDDEN_PREFIX_LETTERS = frozenset("DFIQUV")
_NINO_FORBIDDEN_PREFIXES = frozenset({"BG", "GB", "NK", "KN", "TN", "NT", "ZZ"})

UPN_CHECK_LETTERS = "ABCDEFGHJKLMNPQRTUVWXYZ"
"""The 23 UPN check letters, indexed by the weighted sum modulo 23 (no I, O or S)."""

_UPN_WEIGHTS = range(2, 14)  # weights 2..13 for character positions 2..13


def nhs_check_digit(first_nine: str) -> int | None:
    """Return the modulus-11 check digit for the first nine digits of an NHS number.

    Returns ``None`` when the remainder arithmetic gives 10: no valid NHS number has those first nine
    digits. Raises ``ValueError`` unless ``first_nine`` is exactly nine ASCII digits.
    """
    if len(first_nine) != 9 or not first_nine.isascii() or not first_nine.isdigit():
        raise ValueError(f"expected nine digits, got {first_nine!r}")
    weighted_sum = sum(int(digit) * weight for digit, weight in zip(first_nine, _NHS_WEIGHTS, strict=True))
    check = 11 - weighted_sum % 11
    if check == 11:
        return 0
    if check == 10:
        return None
    return check


def is_valid_nhs_number(candidate: str) -> bool:
    """Whether ``candidate`` is ten digits (no spaces) ending in the correct modulus-11 check digit."""
    if len(candidate) != 10 or not candidate.isascii() or not candidate.isdigit():
        return False
    return nhs_check_digit(candidate[:9]) == int(candidate[9])


def generate_nhs_numbers(rng: random.Random) -> Iterator[str]:
    """Yield distinct valid NHS numbers from the 999 test range, in an order determined by ``rng``.

    Bodies whose check digit would be 10 are skipped. The iterator ends once all of the range
    (a little over 900,000 numbers) has been produced.
    """
    seen: set[int] = set()
    body_count = 10**6  # the six digits after the 999 prefix
    while len(seen) < body_count:
        serial = rng.randrange(body_count)
        if serial in seen:
            continue
        seen.add(serial)
        first_nine = f"{NHS_TEST_PREFIX}{serial:06d}"
        check = nhs_check_digit(first_nine)
        if check is not None:
            yield f"{first_nine}{check}"


def is_valid_nino(candidate: str) -> bool:
    """Whether ``candidate`` follows the National Insurance number format rules.

    The format is two prefix letters, six digits and a suffix letter A-D, with no spaces. Neither prefix
    letter may be D, F, I, Q, U or V, the second may not be O, and BG, GB, NK, KN, TN, NT and ZZ are
    never allocated. The ``QQ`` test prefix is explicitly allowed, because the demo data uses it.
    """
    match = _NINO_PATTERN.match(candidate)
    if match is None:
        return False
    prefix = match.group(1)
    if prefix == NINO_TEST_PREFIX:
        return True
    first, second = prefix[0], prefix[1]
    if first in _NINO_FORBIDDEN_PREFIX_LETTERS or second in _NINO_FORBIDDEN_PREFIX_LETTERS:
        return False
    if second == "O":
        return False
    return prefix not in _NINO_FORBIDDEN_PREFIXES


def generate_ninos(rng: random.Random) -> Iterator[str]:
    """Yield distinct ``QQ`` test NINOs (``QQ`` + six digits + suffix A-D) in an order set by ``rng``.

    The six digits are never repeated, whatever the suffix, since a real NINO's suffix does not
    distinguish two people. The iterator ends after all 1,000,000 digit combinations.
    """
    seen: set[int] = set()
    digit_count = 10**6
    while len(seen) < digit_count:
        digits = rng.randrange(digit_count)
        if digits in seen:
            continue
        seen.add(digits)
        yield f"{NINO_TEST_PREFIX}{digits:06d}{rng.choice(NINO_SUFFIXES)}"


def upn_check_letter(body12: str) -> str:
    """Return the check letter for the twelve numeric characters that follow it in a UPN.

    Character positions 2..13 are multiplied by weights 2..13; the sum modulo 23 indexes
    ``UPN_CHECK_LETTERS``. Raises ``ValueError`` unless ``body12`` is exactly twelve ASCII digits
    (temporary UPNs, whose last character is a letter, are not supported).
    """
    if len(body12) != 12 or not body12.isascii() or not body12.isdigit():
        raise ValueError(f"expected twelve digits, got {body12!r}")
    weighted_sum = sum(int(digit) * weight for digit, weight in zip(body12, _UPN_WEIGHTS, strict=True))
    return UPN_CHECK_LETTERS[weighted_sum % 23]


def is_valid_upn(candidate: str) -> bool:
    """Whether ``candidate`` is a permanent UPN: a correct check letter followed by twelve digits."""
    if len(candidate) != 13:
        return False
    body = candidate[1:]
    if not body.isascii() or not body.isdigit():
        return False
    return candidate[0] == upn_check_letter(body)


def make_upn(la_number: int, establishment_number: int, allocation_year: int, serial: int) -> str:
    """Build a permanent UPN from its parts, prefixed with the computed check letter.

    ``la_number`` is the 3-digit DfE local authority number, ``establishment_number`` the 4-digit DfE
    establishment number of the allocating school, ``allocation_year`` the year of allocation (only its
    last two digits are kept) and ``serial`` a 3-digit serial number. Raises ``ValueError`` when a part
    does not fit its width.
    """
    for name, value, limit in (
        ("la_number", la_number, 1000),
        ("establishment_number", establishment_number, 10000),
        ("serial", serial, 1000),
    ):
        if not 0 <= value < limit:
            raise ValueError(f"{name} must be in 0..{limit - 1}, got {value}")
    if allocation_year < 0:
        raise ValueError(f"allocation_year must not be negative, got {allocation_year}")
    body = f"{la_number:03d}{establishment_number:04d}{allocation_year % 100:02d}{serial:03d}"
    return f"{upn_check_letter(body)}{body}"
