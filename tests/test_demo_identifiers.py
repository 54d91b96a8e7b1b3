"""Tests for demo.identifiers: hand-worked check digits and letters, format rules and the generators."""

import random

import pytest

from demo.identifiers import (
    UPN_CHECK_LETTERS,
    generate_nhs_numbers,
    generate_ninos,
    is_valid_nhs_number,
    is_valid_nino,
    is_valid_upn,
    make_upn,
    nhs_check_digit,
    upn_check_letter,
)

# --- NHS numbers -----------------------------------------------------------------------------------


def test_nhs_number_published_example_is_valid() -> None:
    # 943 476 5919, the example NHS Digital uses. Weights 10..2 over the first nine digits:
    #   9*10 + 4*9 + 3*8 + 4*7 + 7*6 + 6*5 + 5*4 + 9*3 + 1*2
    # = 90 + 36 + 24 + 28 + 42 + 30 + 20 + 27 + 2 = 299;  299 mod 11 = 299 - 297 = 2;  11 - 2 = 9.
    assert nhs_check_digit("943476591") == 9
    assert is_valid_nhs_number("9434765919")
    assert [d for d in "0123456789" if is_valid_nhs_number(f"943476591{d}")] == ["9"]


def test_nhs_number_test_range_example() -> None:
    # 999 000 001: 9*10 + 9*9 + 9*8 + 1*2 = 90 + 81 + 72 + 2 = 245;  245 mod 11 = 245 - 242 = 3;  11 - 3 = 8.
    assert nhs_check_digit("999000001") == 8
    assert is_valid_nhs_number("9990000018")
    assert not is_valid_nhs_number("9990000017")


def test_nhs_remainder_zero_gives_check_digit_zero() -> None:
    # 999 000 005: 90 + 81 + 72 + 5*2 = 253 = 23 * 11, so 253 mod 11 = 0 and 11 - 0 = 11, written as 0.
    assert nhs_check_digit("999000005") == 0
    assert is_valid_nhs_number("9990000050")


def test_nhs_check_value_ten_means_no_valid_number() -> None:
    # 999 123 456: 90 + 81 + 72 + 1*7 + 2*6 + 3*5 + 4*4 + 5*3 + 6*2 = 243 + 77 = 320;
    # 320 mod 11 = 320 - 319 = 1;  11 - 1 = 10, which no single digit can be: the body is unusable.
    assert nhs_check_digit("999123456") is None
    assert not any(is_valid_nhs_number(f"999123456{d}") for d in "0123456789")


@pytest.mark.parametrize("candidate", ["", "943476591", "94347659190", "943 476 5919", "94347659l9", "\uff19434765919"])
def test_nhs_number_malformed_is_invalid(candidate: str) -> None:
    assert not is_valid_nhs_number(candidate)


@pytest.mark.parametrize("body", ["12345678", "1234567890", "12345678a"])
def test_nhs_check_digit_rejects_malformed_body(body: str) -> None:
    with pytest.raises(ValueError, match="nine digits"):
        nhs_check_digit(body)


def test_generated_nhs_numbers_are_distinct_valid_and_in_test_range() -> None:
    numbers = [n for n, _ in zip(generate_nhs_numbers(random.Random(7)), range(5000), strict=False)]
    assert len(numbers) == 5000
    assert len(set(numbers)) == 5000
    assert all(n.startswith("999") and is_valid_nhs_number(n) for n in numbers)


def test_nhs_number_generator_is_deterministic_per_seed() -> None:
    def first(seed: int) -> list[str]:
        return [n for n, _ in zip(generate_nhs_numbers(random.Random(seed)), range(50), strict=False)]

    assert first(1) == first(1)
    assert first(1) != first(2)


def test_any_single_digit_error_in_an_nhs_number_is_detected() -> None:
    # Weights 2..10 are all non-zero modulo the prime 11, so every substitution changes the check value.
    for number in [n for n, _ in zip(generate_nhs_numbers(random.Random(3)), range(40), strict=False)]:
        for position in range(10):
            for digit in "0123456789":
                if digit != number[position]:
                    assert not is_valid_nhs_number(number[:position] + digit + number[position + 1 :])


def test_adjacent_transpositions_in_an_nhs_number_are_detected() -> None:
    for number in [n for n, _ in zip(generate_nhs_numbers(random.Random(4)), range(40), strict=False)]:
        for position in range(9):
            swapped = number[:position] + number[position + 1] + number[position] + number[position + 2 :]
            if swapped != number:
                assert not is_valid_nhs_number(swapped)


# --- National Insurance numbers ---------------------------------------------------------------------


@pytest.mark.parametrize("nino", ["QQ123456C", "QQ000000A", "AB123456D", "JT987654B", "OA123456A", "ZY123456C"])
def test_valid_ninos(nino: str) -> None:
    assert is_valid_nino(nino)


@pytest.mark.parametrize(
    ("nino", "reason"),
    [
        ("DA123456A", "first letter D"),
        ("FA123456A", "first letter F"),
        ("IA123456A", "first letter I"),
        ("QA123456A", "first letter Q outside the QQ test prefix"),
        ("UA123456A", "first letter U"),
        ("VA123456A", "first letter V"),
        ("AD123456A", "second letter D"),
        ("AF123456A", "second letter F"),
        ("AI123456A", "second letter I"),
        ("AQ123456A", "second letter Q"),
        ("AU123456A", "second letter U"),
        ("AV123456A", "second letter V"),
        ("AO123456A", "second letter O"),
        ("BG123456A", "prefix BG"),
        ("GB123456A", "prefix GB"),
        ("NK123456A", "prefix NK"),
        ("KN123456A", "prefix KN"),
        ("TN123456A", "prefix TN"),
        ("NT123456A", "prefix NT"),
        ("ZZ123456A", "prefix ZZ"),
        ("QQ123456E", "suffix outside A-D"),
        ("QQ123456", "no suffix"),
        ("QQ12345C", "five digits"),
        ("QQ1234567C", "seven digits"),
        ("QQ 12 34 56 C", "spaces"),
        ("qq123456c", "lower case"),
        ("Q1123456C", "digit in the prefix"),
    ],
)
def test_invalid_ninos(nino: str, reason: str) -> None:
    assert not is_valid_nino(nino), reason


def test_generated_ninos_are_distinct_valid_and_use_the_test_prefix() -> None:
    ninos = [n for n, _ in zip(generate_ninos(random.Random(11)), range(3000), strict=False)]
    assert all(n.startswith("QQ") and is_valid_nino(n) for n in ninos)
    assert len({n[2:8] for n in ninos}) == len(ninos), "the six digits must never repeat"
    assert {n[-1] for n in ninos} == set("ABCD")


def test_nino_generator_is_deterministic_per_seed() -> None:
    def first(seed: int) -> list[str]:
        return [n for n, _ in zip(generate_ninos(random.Random(seed)), range(50), strict=False)]

    assert first(5) == first(5)
    assert first(5) != first(6)


# --- Unique Pupil Numbers ---------------------------------------------------------------------------


def test_upn_check_letters_skip_i_o_and_s() -> None:
    assert len(UPN_CHECK_LETTERS) == 23
    assert set("ABCDEFGHIJKLMNOPQRSTUVWXYZ") - set(UPN_CHECK_LETTERS) == set("IOS")


def test_upn_published_example() -> None:
    # B801200005001, the example in python-stdnum's UPN module. Weights 2..13 over 801200005001:
    #   8*2 + 0*3 + 1*4 + 2*5 + 0*6 + 0*7 + 0*8 + 0*9 + 5*10 + 0*11 + 0*12 + 1*13
    # = 16 + 4 + 10 + 50 + 13 = 93;  93 mod 23 = 93 - 92 = 1 -> the second letter, B.
    assert upn_check_letter("801200005001") == "B"
    assert is_valid_upn("B801200005001")
    assert not is_valid_upn("A801200005001")


@pytest.mark.parametrize(
    ("body", "letter"),
    [
        # LA 383, establishment 2001, year 25, serial 001: 3*2 + 8*3 + 3*4 + 2*5 + 1*8 + 2*9 + 5*10 + 1*13
        # = 6 + 24 + 12 + 10 + 8 + 18 + 50 + 13 = 141;  141 mod 23 = 141 - 138 = 3 -> D.
        ("383200125001", "D"),
        # 1*13 = 13 -> A..H are 0..7, J=8 (no I), K=9, L=10, M=11, N=12, P=13 (no O).
        ("000000000001", "P"),
        # 1*3 + 1*13 = 16 -> Q=14, R=15, T=16 (no S).
        ("010000000001", "T"),
        # 1*9 + 1*13 = 22 -> Z, the last letter.
        ("000000010001", "Z"),
        # 1*10 + 1*13 = 23 -> 23 mod 23 = 0 -> A.
        ("000000001001", "A"),
    ],
)
def test_upn_hand_worked_check_letters(body: str, letter: str) -> None:
    assert upn_check_letter(body) == letter
    assert is_valid_upn(letter + body)


def test_make_upn_joins_the_parts_behind_the_check_letter() -> None:
    assert make_upn(383, 2001, 2025, 1) == "D383200125001"  # worked out above
    assert make_upn(801, 2000, 2005, 1) == "B801200005001"


@pytest.mark.parametrize(
    ("la_number", "establishment_number", "allocation_year", "serial"),
    [(1000, 2001, 2025, 1), (383, 10000, 2025, 1), (383, 2001, 2025, 1000), (383, 2001, -1, 1), (-1, 1, 1, 1)],
)
def test_make_upn_rejects_parts_that_do_not_fit(
    la_number: int, establishment_number: int, allocation_year: int, serial: int
) -> None:
    with pytest.raises(ValueError, match="must"):
        make_upn(la_number, establishment_number, allocation_year, serial)


@pytest.mark.parametrize(
    "candidate", ["", "B80120000500", "B8012000050012", "b801200005001", "B80120000500A", "1801200005001"]
)
def test_malformed_upns_are_invalid(candidate: str) -> None:
    assert not is_valid_upn(candidate)


def test_upn_check_letter_rejects_non_numeric_body() -> None:
    with pytest.raises(ValueError, match="twelve digits"):
        upn_check_letter("80120000A001")


def test_any_single_digit_error_in_a_upn_is_detected() -> None:
    # Weights 2..13 are non-zero modulo the prime 23 and digit changes are at most 9, so the letter changes.
    rng = random.Random(9)
    for _ in range(40):
        upn = make_upn(
            rng.randrange(300, 400), rng.randrange(2000, 5000), rng.randrange(2010, 2027), rng.randrange(1, 999)
        )
        assert is_valid_upn(upn)
        for position in range(1, 13):
            for digit in "0123456789":
                if digit != upn[position]:
                    assert not is_valid_upn(upn[:position] + digit + upn[position + 1 :])
