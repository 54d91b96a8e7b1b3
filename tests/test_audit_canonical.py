"""The audit's canonical JSON is RFC 8785's, byte for byte, for every value an event can hold; its times."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import orjson
import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.audit.chain import canonical
from gateway.audit.writer import TIME_FORMAT, now_text

#: An event's values: JSON without floats, integers within RFC 8785's (IEEE 754 double) exact domain.
SAFE = 2**53 - 1
scalars = st.none() | st.booleans() | st.integers(-SAFE, SAFE) | st.text()
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4), max_leaves=20
)


@settings(max_examples=400)
@given(st.dictionaries(st.text(), values, max_size=6))
def test_agrees_with_the_reference_implementation(body: dict[str, Any]) -> None:
    assert canonical(body) == rfc8785.dumps(body)


def test_keys_beyond_the_basic_plane_are_ordered_by_utf16_code_units() -> None:
    """U+1F600 is D83D DE00 in UTF-16, so it sorts before U+FF61 (a code point order would put it after)."""
    body = {"\U0001f600": 1, "\uff61": 2}
    assert canonical(body) == '{"\U0001f600":1,"\uff61":2}'.encode()
    assert orjson.dumps(body, option=orjson.OPT_SORT_KEYS) != canonical(body)  # why the fallback exists


def test_escapes_are_rfc8785s() -> None:
    body = {"s": '"\\/\b\f\n\r\t\x00\x1f\x7f\u2028é'}
    assert canonical(body) == b'{"s":"\\"\\\\/\\b\\f\\n\\r\\t\\u0000\\u001f\x7f\xe2\x80\xa8\xc3\xa9"}'


def test_integers_beyond_the_exact_domain_are_refused() -> None:
    with pytest.raises(orjson.JSONEncodeError):
        canonical({"n": 2**53})


def test_times_are_written_in_the_one_audit_format() -> None:
    """UTC, microseconds, ``Z``: text order is time order."""
    text = now_text()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", text)
    parsed = dt.datetime.strptime(text, TIME_FORMAT).replace(tzinfo=dt.UTC)
    assert abs((dt.datetime.now(dt.UTC) - parsed).total_seconds()) < 60
