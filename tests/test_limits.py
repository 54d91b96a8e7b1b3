"""Every limit docs/security.md lists exists with the documented setting and default, and a request over
it is refused before any department is asked; every limit the code can report is in that list."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from gateway.app import create_app
from gateway.errors import QueryLimit
from gateway.limits import REQUEST_LIMITS, markdown_table
from gateway.settings import Settings
from schema.catalog import Catalog

DOCS = Path(__file__).parent.parent / "docs" / "security.md"


def _documented() -> dict[str, tuple[str, int]]:
    """limit → (setting, default) from the table under "Limits on queries"."""
    section = DOCS.read_text().split("## Limits on queries", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| `([\w.]+)` \| (\d+) \|", section, flags=re.MULTILINE)
    return {name: (setting, int(default)) for name, setting, default in rows}


DOCUMENTED = _documented()

#: For each limit: the setting lowered to make the request small, the request (a GraphQL document, or a
#: list for a batch, or raw bytes), and what the refusal looks like.
OVER: dict[str, tuple[int, Any]] = {
    "depth": (2, "{ clinic { people { visits { visitId } } } }"),
    "aliases": (1, "{ clinic { a: people { personId } b: people { personId } } }"),
    "root_fields": (1, "{ clinic { people { personId } visits { visitId } } }"),
    "cost": (10, "{ clinic { people(limit: 11) { personId } } }"),
    "page_size": (5, "{ clinic { people(limit: 6) { personId } } }"),
    "offset": (5, "{ clinic { people(offset: 6) { personId } } }"),
    "in_list": (2, '{ clinic { people(where: {personId: {in: ["p01", "p02", "p03"]}}) { personId } } }'),
    "batch_size": (2, ["{ __typename }"] * 3),
    "document_size": (100, "{ clinic { people { personId } } } # " + "x" * 100),
    "tokens": (10, "{ clinic { people { personId givenName familyName } } }"),
    "fields": (3, "{ clinic { people { personId givenName familyName } } }"),
    "repeated_fields": (2, "{ clinic { people { personId personId ... on ClinicPerson { personId } } } }"),
    "fragments": (
        1,
        "{ clinic { people { ...A ...B } } } fragment A on ClinicPerson { personId } "
        "fragment B on ClinicPerson { givenName }",
    ),
    "variables": (1, "query($a: Int, $b: Int) { clinic { people(limit: $a, offset: $b) { personId } } }"),
    "directives": (1, "{ clinic { people { personId @include(if: true) born @skip(if: false) } } }"),
    "field_comparisons": (100, "{ clinic { people { " + "personId " * 10 + "givenName " * 10 + "born " * 10 + "} } }"),
    "selections": (
        6,
        "{ clinic { people { ...A } visits { visitId } } } "
        "fragment A on ClinicPerson { personId givenName familyName }",
    ),
    "body": (1024, b'{"query": "{ __typename }", "variables": {"pad": "' + b"x" * 2048 + b'"}}'),
}


def test_the_documented_limits_are_exactly_those_the_code_reports() -> None:
    assert set(DOCUMENTED) == {limit.value for limit in QueryLimit} | {"body"}
    assert set(OVER) == set(DOCUMENTED)


def test_the_docs_table_is_the_one_declaration_of_the_limits() -> None:
    """docs/security.md shows gateway/limits.py's declaration exactly (regenerate it with markdown_table())."""
    assert markdown_table() in DOCS.read_text()
    assert [(limit.name, limit.setting, limit.default) for limit in REQUEST_LIMITS] == [
        (name, setting, default) for name, (setting, default) in DOCUMENTED.items()
    ]


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_each_documented_setting_has_the_documented_default(name: str) -> None:
    setting, default = DOCUMENTED[name]
    section, key = setting.split(".")
    model = Settings.model_fields[section].default_factory()  # type: ignore[misc,call-arg]
    assert getattr(model, key) == default


def _settings(setting: str, value: int) -> Settings:
    section, key = setting.split(".")
    data: dict[str, Any] = {"catalog": "unused.yaml", "auth": {"enabled": False}, "logging": {"format": "console"}}
    data[section] = {key: value}
    if key in {"max_page_size", "max_offset"}:
        data["graphql"]["default_page_size"] = 5
    return Settings.model_validate(data)


@pytest.mark.parametrize("name", sorted(OVER))
async def test_a_request_over_each_documented_limit_is_refused(sqlite_clinic: Catalog, name: str) -> None:
    setting, _ = DOCUMENTED[name]
    value, request = OVER[name]
    app = create_app(_settings(setting, value), sqlite_clinic, None)
    asked: list[str] = []

    async def fetch(department: str, *args: Any, **kwargs: Any) -> Any:
        asked.append(department)
        raise AssertionError("a department was asked")

    app.state.gateway.sources.fetch = fetch
    if isinstance(request, bytes):
        body = request
    elif isinstance(request, list):
        body = orjson.dumps([{"query": query} for query in request])
    else:
        body = orjson.dumps({"query": request})
    headers = {"content-type": "application/json", "accept": "application/graphql-response+json"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fedgate") as client:
        response = await client.post("/graphql", content=body, headers=headers)
    assert asked == []
    (error,) = response.json()["errors"]
    if name == "body":
        assert response.status_code == 413
        assert error["extensions"] == {"code": "REQUEST_TOO_LARGE"}
    else:
        assert response.status_code == 400
        assert error["extensions"] == {"code": "QUERY_LIMIT_EXCEEDED", "limit": name}


async def test_a_refusal_for_a_limit_waits_before_it_is_answered_and_nothing_else_does(sqlite_clinic: Catalog) -> None:
    """A client looping on documents over the limits gets one answer per connection per delay."""
    delay = 1.5
    settings = Settings.model_validate({
        "catalog": "unused.yaml", "auth": {"enabled": False}, "logging": {"format": "console"},
        "graphql": {"max_tokens": 10, "limit_refusal_delay_ms": delay * 1000},
    })  # fmt: skip
    app = create_app(settings, sqlite_clinic, None)
    headers = {"content-type": "application/json"}
    timings: dict[str, tuple[float, str]] = {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fedgate") as client:
        for name, query in (("over", "{ clinic { people { personId givenName familyName } } }"),
                            ("invalid", "{ clinic { nobody } }"), ("answered", "{ __typename }")):  # fmt: skip
            started = time.monotonic()
            response = await client.post("/graphql", json={"query": query}, headers=headers)
            errors = response.json().get("errors") or [{"extensions": {"code": "none"}}]
            timings[name] = (time.monotonic() - started, errors[0]["extensions"]["code"])
    assert timings["over"][1] == "QUERY_LIMIT_EXCEEDED" and timings["over"][0] >= delay
    assert timings["invalid"][1] == "GRAPHQL_VALIDATION_FAILED" and timings["invalid"][0] < delay
    assert timings["answered"][1] == "none" and timings["answered"][0] < delay
