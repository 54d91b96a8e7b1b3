"""REST departments against a real API on loopback: pushdown, pagination, caps, failures, credentials."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from adapters.rest import RestAdapter
from gateway.errors import SourceQueryError
from gateway.principal import ANONYMOUS, Principal
from gateway.service import GraphQLRequest, GraphQLResponse
from schema.catalog import load_catalog
from tests.conftest import RULES, first_error, load_test_policy, run, started_gateway
from tests.fixtures.clinic_data import PEOPLE, VISITS
from tests.support.bombs import MIB, bomb, compressed
from tests.support.http_clinic import HttpClinic, clinic_rest_api, http_catalog_data, write_http_catalog
from tests.support.rest_api import RestApi
from tests.support.servers import free_port, serving

Rest = HttpClinic[RestApi]


@pytest.fixture
async def rest(tmp_path: Path) -> AsyncIterator[Rest]:
    api = clinic_rest_api()
    async with serving(api.app) as url:
        harness = HttpClinic("rest", api, url, {"clinic": f"{url}/clinic", "council": f"{url}/council"}, tmp_path)
        try:
            yield harness
        finally:
            await harness.stop()


def _ids(response: GraphQLResponse, field: str = "people", key: str = "personId") -> list[Any]:
    assert response.errors == [], response.errors
    assert response.data is not None
    return [row[key] for row in response.data["clinic"][field]]


# --- pushdown -------------------------------------------------------------------------------------


async def test_declared_filters_are_pushed_and_everything_is_applied_again(rest: Rest) -> None:
    gateway = await rest.gateway()
    response = await run(gateway, '{ clinic { people(where: {givenName: {eq: "alice"}, born: {gte: "1970-01-01"}}) '
                                  "{ personId givenName } } }")  # fmt: skip
    # The API matches names case-insensitively (looser): it returns alice and Alice; fedgate keeps alice.
    assert _ids(response) == ["p01"]
    requests = rest.api.requests_to("/clinic/people")
    assert len(requests) == 1
    assert ("given", "alice") in requests[0].params
    assert ("born_from", "1970-01-01") in requests[0].params
    assert ("page", "1") in requests[0].params and ("page_size", "4") in requests[0].params


async def test_an_api_that_ignores_a_filter_still_gives_the_right_answer(rest: Rest) -> None:
    gateway = await rest.gateway()
    response = await run(gateway, '{ clinic { visits(where: {kind: {eq: "ae"}}) { visitId kind } } }')
    assert _ids(response, "visits", "visitId") == [v["visit_id"] for v in VISITS if v["kind"] == "ae"]
    requests = rest.api.requests_to("/clinic/visits")
    assert all(("kind", "ae") in request.params for request in requests)
    # It sent every visit, page after page (3 a page): fedgate filtered them.
    assert len(requests) == len(VISITS) // 3 + 1


async def test_undeclared_filters_and_values_without_a_parameter_are_not_sent(rest: Rest) -> None:
    gateway = await rest.gateway()
    query = '{ clinic { people(where: {familyName: {eq: "smith"}, givenName: {in: ["dave", "bob"]}}) { personId } } }'
    response = await run(gateway, query)
    assert _ids(response) == ["p11"]
    names = {name for request in rest.api.requests_to("/clinic/people") for name, _ in request.params}
    assert names == {"page", "page_size"}  # no family filter declared; 'given' is eq only, two names given


async def test_child_levels_push_their_key_sets_split_and_concurrently_within_the_bulkhead(rest: Rest) -> None:
    gateway = await rest.gateway(max_concurrency=2)
    rest.api.behaviour.delay = 0.05
    response = await run(gateway, "{ clinic { people(orderBy: [{personId: ASC}]) { personId visits { visitId } } } }")
    assert response.errors == []
    assert response.data is not None
    got = {p["personId"]: [v["visitId"] for v in p["visits"]] for p in response.data["clinic"]["people"]}
    assert got == {p["person_id"]: [v["visit_id"] for v in VISITS if v["person_id"] == p["person_id"]] for p in PEOPLE}
    visit_requests = rest.api.requests_to("/clinic/visits")
    firsts = [r for r in visit_requests if ("offset", "0") in r.params]
    # 13 people, 2 keys a request (repeated parameter): 7 requests (each possibly paged further).
    assert len(firsts) == 7
    assert all(1 <= len([v for k, v in r.params if k == "person"]) <= 2 for r in visit_requests)
    sent = sorted(v for r in firsts for k, v in r.params if k == "person")
    assert sent == sorted(p["person_id"] for p in PEOPLE)
    assert rest.api.most_in_flight == 2  # concurrent, never beyond the source's max_concurrency


async def test_key_sets_go_as_one_comma_separated_list_without_null_keys(rest: Rest) -> None:
    gateway = await rest.gateway()
    response = await run(gateway, "{ clinic { people { personId cases { caseId } } } }")
    assert response.errors == []
    case_requests = rest.api.requests_to("/council/cases")
    lists = {value for r in case_requests for name, value in r.params if name == "nhs"}
    assert len(lists) == 1
    assert sorted(lists.pop().split(",")) == sorted(p["nhs_number"] for p in PEOPLE if p["nhs_number"])


async def test_masked_columns_are_never_pushed_and_row_filters_are(rest: Rest) -> None:
    catalog = rest.catalog()
    policy = load_test_policy(RULES, catalog)
    gateway = await started_gateway(catalog, policy=policy)
    rest.gateways.append(gateway)
    reception = Principal(subject="r", scopes=frozenset({"reception"}), attributes={"min_visits": "2"})
    response = await run(gateway, '{ clinic { people(where: {nhsNumber: {in: ["9990000001", "****0001"]}}) '
                                  "{ personId nhsNumber } } }", principal=reception)  # fmt: skip
    assert response.errors == []
    assert response.data == {"clinic": {"people": [{"personId": "p01", "nhsNumber": "****0001"}]}}
    assert all(name != "nhs" for r in rest.api.requests_to("/clinic/people") for name, _ in r.params)
    rest.api.reset()
    linkage = Principal(subject="l", scopes=frozenset({"linkage"}))
    response = await run(gateway, "{ council { cases { caseId status } } }", principal=linkage)
    assert response.errors == []
    assert {case["status"] for case in response.data["council"]["cases"]} == {"open"}  # type: ignore[index]
    assert all(("status", "open") in r.params for r in rest.api.requests_to("/council/cases"))


async def test_explain_shows_the_request_and_the_sql_run_on_its_rows(rest: Rest) -> None:
    catalog = rest.catalog()
    adapter = RestAdapter(catalog.department("clinic"))
    gateway = await rest.gateway()
    prepared = gateway.prepare(GraphQLRequest('{ clinic { people(where: {personId: {eq: "p01"}}) { givenName } } }'),
                               ANONYMOUS)  # fmt: skip
    statement = prepared.bound.statement(prepared.bound.plan.scans[0])
    text = statement.display_sql
    assert text.startswith("GET /people?id={:p0}&page={page}&page_size=4 (pages: page)\nthen in fedgate: SELECT")
    assert "p01" not in text
    assert statement.placeholders[0] == (":p0", "p0")
    with pytest.raises(SourceQueryError, match="cannot describe its tables"):
        await adapter.introspect()


# --- pagination -----------------------------------------------------------------------------------


def _link_pages(data: dict[str, Any]) -> None:
    people = data["departments"][0]["tables"][0]["rest"]
    people.update(rows="", pagination={"style": "link", "size_param": "per_page", "size": 5})
    visits = data["departments"][0]["tables"][1]["rest"]
    visits.update(rows="results", pagination={"style": "none"})


async def test_link_headers_and_unpaged_endpoints(rest: Rest) -> None:
    rest.api.tables["/clinic/people"].pagination, rest.api.tables["/clinic/people"].wrap = "link", None
    rest.api.tables["/clinic/visits"].pagination = "none"
    gateway = await rest.gateway(_link_pages)
    response = await run(gateway, "{ clinic { people(orderBy: [{personId: DESC}]) { personId visits { visitId } } } }")
    assert _ids(response) == sorted((p["person_id"] for p in PEOPLE), reverse=True)
    pages = rest.api.requests_to("/clinic/people")
    assert [dict(r.params).get("p") for r in pages] == [None, "2", "3"]
    assert all(("per_page", "5") in r.params for r in pages)
    assert len(rest.api.requests_to("/clinic/visits")) == 7  # no pages: one request per key chunk

    rest.api.reset()
    rest.api.behaviour.foreign_next = True
    response = await run(gateway, "{ clinic { people { personId } } }")
    assert first_error(response)["extensions"] == {
        "code": "SOURCE_BAD_RESPONSE",
        "department": "clinic",
        "retryable": False,
    }
    assert {r.headers.get("host") for r in rest.api.log} == {rest.url.removeprefix("http://")}


# --- caps -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunked", [False, True], ids=["declared-length", "streamed"])
async def test_an_oversized_response_is_refused_not_truncated(rest: Rest, chunked: bool) -> None:
    gateway = await rest.gateway(max_response_bytes=8192)
    rest.api.behaviour.padding, rest.api.behaviour.chunked = 4000, chunked
    response = await run(gateway, "{ clinic { people { personId } } }")
    assert response.data == {"clinic": {"people": None}}
    assert first_error(response)["extensions"]["code"] == "SOURCE_RESPONSE_TOO_LARGE"
    assert "8192 bytes" in first_error(response)["message"]


WARM_UP = "{ clinic { people { personId } } }"


async def test_a_gzip_bomb_is_refused_without_the_memory_it_would_take(tmp_path: Path) -> None:
    """130 KiB on the wire that inflate to 128 MiB, from a department capped at 1 MiB: refused, and the
    gateway's process (one of its own, so that no other test's memory can hide it) grows by a few MiB at
    most. Inflating each network chunk whole before counting it cost about 66 MiB per chunk."""
    healthy, hostile = clinic_rest_api(), clinic_rest_api()
    hostile.behaviour.raw_body, hostile.behaviour.content_encoding = bomb(128 * MIB), "gzip"
    async with serving(healthy.app) as healthy_url, serving(hostile.app) as hostile_url:
        urls = {"clinic": f"{healthy_url}/clinic", "council": f"{hostile_url}/council"}
        catalog = write_http_catalog(tmp_path, http_catalog_data("rest", urls, max_response_bytes=MIB))
        probe = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "tests.support.memory_probe", str(catalog)),
            *(WARM_UP, WARM_UP, "{ council { cases { caseId } } }"),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=Path(__file__).parents[1],
        )
        out, err = await asyncio.wait_for(probe.communicate(), 120)
    assert probe.returncode == 0, err.decode()
    *warm_ups, bombed = [json.loads(line) for line in out.decode().splitlines() if line.startswith('{"codes"')]
    assert [answer["codes"] for answer in warm_ups] == [[], []]
    assert bombed["codes"] == ["SOURCE_RESPONSE_TOO_LARGE"]
    growth = (bombed["peak_kib_after"] - bombed["peak_kib_before"]) / 1024
    assert growth < 16, f"the process's peak memory grew by {growth:.0f} MiB reading a bomb capped at 1 MiB"
    assert hostile.requests_to("/council/cases")[0].headers["accept-encoding"] == "gzip, deflate"


async def test_too_many_rows_or_pages_are_refused(rest: Rest) -> None:
    gateway = await rest.gateway(max_rows=10)
    response = await run(gateway, "{ clinic { people { personId } } }")
    assert first_error(response)["extensions"]["code"] == "SOURCE_RESPONSE_TOO_LARGE"
    assert "more than 10 rows" in first_error(response)["message"]
    gateway = await rest.gateway(max_pages=3)
    response = await run(gateway, "{ clinic { people { personId } } }")  # 13 people, 4 a page: 4 pages
    assert first_error(response)["extensions"]["code"] == "SOURCE_RESPONSE_TOO_LARGE"
    assert "more than 3 pages" in first_error(response)["message"]
    response = await run(gateway, '{ clinic { people(where: {personId: {eq: "p03"}}) { personId } } }')
    assert _ids(response) == ["p03"]  # pushed down: one page suffices


# --- failures -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [
        (500, "SOURCE_UNAVAILABLE", True),
        (503, "SOURCE_UNAVAILABLE", True),
        (429, "SOURCE_RESOURCE_EXHAUSTED", True),
        (401, "SOURCE_AUTH_FAILED", False),
        (403, "SOURCE_AUTH_FAILED", False),
        (400, "SOURCE_QUERY_FAILED", False),
        (404, "SOURCE_QUERY_FAILED", False),
        (302, "SOURCE_BAD_RESPONSE", False),
    ],
)
async def test_http_statuses_are_mapped(rest: Rest, status: int, code: str, retryable: bool) -> None:
    gateway = await rest.gateway()
    rest.api.behaviour.status = status
    response = await run(gateway, "{ clinic { people { personId } } }")
    assert response.data == {"clinic": {"people": None}}
    assert first_error(response)["extensions"] == {"code": code, "department": "clinic", "retryable": retryable}


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b'{"data": [{"person_id": "p1", ', "not JSON"),
        (b"NaN", "not JSON"),
        (b'{"data": {"person_id": "p1"}}', "no list of rows"),
        (b'{"rows": []}', "no list of rows"),
        (b'{"data": [17]}', "not an object"),
        (b'{"data": [{"person_id": 1234567}]}', "people.person_id"),
        (b'{"data": [{"name": {"given": "x"}}]}', "people.person_id"),
    ],
)
async def test_malformed_or_mistyped_answers_fail_without_echoing_them(rest: Rest, body: bytes, problem: str) -> None:
    gateway = await rest.gateway()
    rest.api.behaviour.raw_body = body
    response = await run(gateway, "{ clinic { people { personId givenName } } }")
    error = first_error(response)
    assert error["extensions"]["code"] == "SOURCE_BAD_RESPONSE"
    assert problem in error["message"]
    assert "1234567" not in error["message"]


@pytest.mark.parametrize("coding", ["gzip", "deflate", "raw-deflate"])
async def test_compressed_answers_are_read(rest: Rest, coding: str) -> None:
    gateway = await rest.gateway()
    body = b'{"data": [{"person_id": "p1", "name": {"given": "Ann", "family": "Ash"}}]}'
    rest.api.behaviour.raw_body = compressed(body, coding)
    rest.api.behaviour.content_encoding = "deflate" if coding == "raw-deflate" else coding
    response = await run(gateway, "{ clinic { people { personId givenName } } }")
    assert response.errors == []
    assert response.data == {"clinic": {"people": [{"personId": "p1", "givenName": "Ann"}]}}


@pytest.mark.parametrize(
    ("body", "coding"),
    [(b'{"data": []}', "br"), (b'{"data": []}', "gzip, gzip"), (b"\x1f\x8b\x08\x00" + b"\xff" * 64, "gzip")],
    ids=["not-asked-for", "stacked", "does-not-inflate"],
)
async def test_codings_not_asked_for_or_broken_are_bad_responses(rest: Rest, body: bytes, coding: str) -> None:
    gateway = await rest.gateway()
    rest.api.behaviour.raw_body, rest.api.behaviour.content_encoding = body, coding
    response = await run(gateway, "{ clinic { people { personId } } }")
    assert first_error(response)["extensions"] == {
        "code": "SOURCE_BAD_RESPONSE",
        "department": "clinic",
        "retryable": False,
    }


async def test_a_slow_api_times_out_and_the_other_department_still_answers(tmp_path: Path) -> None:
    slow, fast = clinic_rest_api(), clinic_rest_api()
    slow.behaviour.delay = 2.0
    async with serving(slow.app) as slow_url, serving(fast.app) as fast_url:
        data = http_catalog_data("rest", {"clinic": f"{slow_url}/clinic", "council": f"{fast_url}/council"})
        data["departments"][0]["source"]["timeout_seconds"] = 0.3
        gateway = await started_gateway(load_catalog(write_http_catalog(tmp_path, data)))
        try:
            response = await run(gateway, "{ clinic { people { personId } } council { cases { caseId } } }")
        finally:
            await gateway.stop()
    assert response.data is not None
    assert response.data["clinic"] == {"people": None}
    assert len(response.data["council"]["cases"]) == 6
    assert first_error(response)["extensions"] == {"code": "SOURCE_TIMEOUT", "department": "clinic", "retryable": True}


async def test_an_unreachable_api_is_unavailable_and_unhealthy(tmp_path: Path) -> None:
    data = http_catalog_data("rest", {"clinic": f"http://127.0.0.1:{free_port()}/x", "council": "http://127.0.0.1:1/y"})
    gateway = await started_gateway(load_catalog(write_http_catalog(tmp_path, data)))
    try:
        response = await run(gateway, "{ clinic { people { personId } } }")
        health = await gateway.sources.health()
    finally:
        await gateway.stop()
    assert first_error(response)["extensions"] == {
        "code": "SOURCE_UNAVAILABLE",
        "department": "clinic",
        "retryable": True,
    }
    assert {(h.department, h.ok, h.code) for h in health} == {
        ("clinic", False, "SOURCE_UNAVAILABLE"),
        ("council", False, "SOURCE_UNAVAILABLE"),
    }


async def test_health_asks_for_one_row(rest: Rest) -> None:
    gateway = await rest.gateway()
    health = await gateway.sources.health()
    assert all(h.ok for h in health)
    first = rest.api.requests_to("/clinic/people")[0]
    assert first.params == [("page", "1"), ("page_size", "1")]
    assert rest.api.requests_to("/council/cases")[0].params == [("limit", "1")]


# --- static credentials ---------------------------------------------------------------------------


async def test_static_bearer_and_basic_credentials(rest: Rest, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLINIC_API_TOKEN", "s3rvice-t0ken")
    monkeypatch.setenv("CLINIC_API_PASSWORD", "pa:ss wörd")
    seen: list[str | None] = []

    def authorize(header: str | None, path: str) -> bool:
        seen.append(header)
        return header in {"Bearer s3rvice-t0ken", "Basic ZmVkZ2F0ZTpwYTpzcyB3w7ZyZA=="}

    rest.api.behaviour.authorize = authorize
    bearer = await rest.gateway(credential={"kind": "bearer", "token_env": "CLINIC_API_TOKEN"})
    assert _ids(await run(bearer, '{ clinic { people(where: {personId: {eq: "p02"}}) { personId } } }')) == ["p02"]
    basic = await rest.gateway(
        credential={"kind": "basic", "username": "fedgate", "password_env": "CLINIC_API_PASSWORD"}
    )
    assert _ids(await run(basic, '{ clinic { people(where: {personId: {eq: "p02"}}) { personId } } }')) == ["p02"]
    anonymous = await rest.gateway()
    response = await run(anonymous, "{ clinic { people { personId } } }")
    assert first_error(response)["extensions"]["code"] == "SOURCE_AUTH_FAILED"
    assert seen[-1] is None
    assert "s3rvice-t0ken" not in str(response.errors)


async def test_logs_name_the_failure_never_bodies_values_or_tokens(rest: Rest, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLINIC_API_TOKEN", "s3rvice-t0ken")
    gateway = await rest.gateway(credential={"kind": "bearer", "token_env": "CLINIC_API_TOKEN"})
    with capture_logs() as logs:
        rest.api.behaviour.raw_body = b'{"data": [{"person_id": "SECRET-ROW", "name": {"given": 7}}]}'
        await run(gateway, '{ clinic { people(where: {personId: {eq: "p0-VALUE"}}) { givenName } } }')
        rest.api.behaviour.raw_body, rest.api.behaviour.status = None, 401
        await run(gateway, '{ clinic { people(where: {personId: {eq: "p0-VALUE"}}) { givenName } } }')
    events = [event for event in logs if event.get("department") == "clinic"]
    assert {(event["event"], event.get("status"), event.get("mapped")) for event in events} >= {
        ("http_source_bad_value", None, None),
        ("http_source_error", 401, "SOURCE_AUTH_FAILED"),
    }
    text = repr(logs)
    for secret in ("SECRET-ROW", "p0-VALUE", "s3rvice-t0ken"):
        assert secret not in text
