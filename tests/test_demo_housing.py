"""The demo's housing department: its generated rows, its REST API, and the API as its own process."""

from __future__ import annotations

import itertools
import os
import re
import socket
import stat
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

import demo.generate
from demo.backends import write_catalog_variant
from demo.generate import REFERENCE_DATE, generate
from demo.housing import EPC_BANDS, PROPERTY_TYPES, TENURES, HousingTables
from demo.housing_api import TOKEN_ENV, HousingData, create_app, load_or_create_token, service_token, write_housing_data
from demo.people import COUNCILS
from demo.services import ServiceError, start_housing_api
from gateway.endpoint import dumps
from gateway.execution.guarded_adapters import GuardedAdapters
from gateway.service import Gateway
from schema.catalog import load_catalog
from tests.conftest import run
from tests.support.demo_support import TOKEN, client, demo_federation
from tests.support.servers import free_port

Rows = dict[str, list[dict[str, Any]]]
DISTRICTS = {council.la_code: set(council.postcode_districts) for council in COUNCILS}


@pytest.fixture(scope="module")
def rows() -> Rows:
    return generate()


# --- The generated rows -----------------------------------------------------------------------------


def test_tenancies_belong_to_social_care_clients_of_the_same_council(rows: Rows) -> None:
    clients = {c["client_id"]: c for c in rows["social_care.clients"]}
    properties = {p["uprn"]: p for p in rows["housing.properties"]}
    tenants = {t["council_person_id"] for t in rows["housing.tenancies"]}
    assert 0.35 <= len(tenants) / len(clients) <= 0.65  # about half of the clients rent their home
    for tenancy in rows["housing.tenancies"]:
        client = clients[tenancy["council_person_id"]]
        home = properties[tenancy["uprn"]]
        assert tenancy["la_code"] == client["la_code"] == home["la_code"]
        assert tenancy["tenancy_id"].startswith(client["client_id"][:3] + "-T")
        assert tenancy["tenure"] in TENURES
        assert tenancy["start_date"] <= (tenancy["end_date"] or REFERENCE_DATE) <= REFERENCE_DATE
    assert {p["uprn"] for p in rows["housing.properties"]} == {t["uprn"] for t in rows["housing.tenancies"]}


def test_the_current_home_is_at_the_clients_postcode_and_every_postcode_in_the_council(rows: Rows) -> None:
    clients = {c["client_id"]: c for c in rows["social_care.clients"]}
    properties = {p["uprn"]: p for p in rows["housing.properties"]}
    for tenancy in rows["housing.tenancies"]:
        if tenancy["end_date"] is None:
            assert properties[tenancy["uprn"]]["postcode"] == clients[tenancy["council_person_id"]]["postcode"]
    for home in rows["housing.properties"]:
        assert home["postcode"].split(" ")[0] in DISTRICTS[home["la_code"]]
        assert re.fullmatch(r"99[0-9]{10}", home["uprn"])
        assert home["property_type"] in PROPERTY_TYPES
        assert home["council_tax_band"] in "ABCDEFGH"


def test_tenancies_never_overlap_for_a_person_or_a_property(rows: Rows) -> None:
    for key in ("council_person_id", "uprn"):
        groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for tenancy in rows["housing.tenancies"]:
            groups[tenancy[key]].append(tenancy)
        for history in groups.values():
            history.sort(key=lambda t: t["start_date"])
            for earlier, later in itertools.pairwise(history):
                assert earlier["end_date"] is not None and earlier["end_date"] < later["start_date"], history
    relet = Counter(t["uprn"] for t in rows["housing.tenancies"])
    assert any(count > 1 for count in relet.values())  # some homes were let again to another client
    moved = Counter(t["council_person_id"] for t in rows["housing.tenancies"])
    assert any(count > 1 for count in moved.values())  # some clients moved


def test_death_or_a_care_home_ends_the_tenancy(rows: Rows) -> None:
    died = {
        link["council_person_id"]
        for link in rows["person_index.person_links"]
        for patient in rows["health.patients"]
        if link["council_person_id"] and patient["nhs_number"] == link["nhs_number"] and patient["date_of_death"]
    }
    in_care = {
        s["client_id"]
        for s in rows["social_care.services"]
        if s["service_type"] in {"residential care", "nursing care"} and s["end_date"] is None
    }
    tenants = {t["council_person_id"] for t in rows["housing.tenancies"]}
    assert tenants & died and tenants & in_care
    for tenancy in rows["housing.tenancies"]:
        if tenancy["council_person_id"] in died | in_care:
            assert tenancy["end_date"] is not None, tenancy


def test_epc_ratings_are_mostly_c_to_e_with_scores_in_their_band(rows: Rows) -> None:
    properties = rows["housing.properties"]
    for home in properties:
        assessed = (home["epc_rating"], home["epc_score"], home["epc_assessed_on"])
        assert all(value is None for value in assessed) or all(value is not None for value in assessed)
        if home["epc_rating"] is not None:
            low, high = EPC_BANDS[home["epc_rating"]]
            assert low <= home["epc_score"] <= high
            assert date(2009, 1, 1) <= home["epc_assessed_on"] < REFERENCE_DATE
    ratings = Counter(home["epc_rating"] for home in properties if home["epc_rating"] is not None)
    rated = sum(ratings.values())
    assert 0.03 <= 1 - rated / len(properties) <= 0.3  # some homes have no EPC
    assert (ratings["C"] + ratings["D"] + ratings["E"]) / rated >= 0.75
    assert 0 < ratings["A"] + ratings["B"] <= 0.15 * rated
    assert ratings["F"] + ratings["G"] > 0


def test_arrears_adaptations_and_tenure(rows: Rows) -> None:
    tenancies = rows["housing.tenancies"]
    for tenancy in tenancies:
        arrears = tenancy["rent_arrears"]
        assert (arrears is None) == (tenancy["tenure"] == "private rented")  # no rent account for private lets
        assert arrears is None or (arrears >= 0 and arrears.as_tuple().exponent == -2)
    assert any(t["rent_arrears"] and t["rent_arrears"] > Decimal("0") for t in tenancies)
    assert not [t for t in tenancies if t["la_code"] == "E08000036" and t["tenure"] == "council"]  # stock transfer
    born = {c["client_id"]: c["date_of_birth"] for c in rows["social_care.clients"]}

    def share(older: bool) -> float:
        group = [t for t in tenancies if (born[t["council_person_id"]] <= date(1961, 11, 1)) == older]
        return sum(t["has_adaptations"] for t in group) / len(group)

    assert share(older=True) > share(older=False) > 0


def test_housing_has_its_own_random_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    """Adding housing changed no other department's rows: it never draws from their generator."""
    with_housing = generate(people=800)
    monkeypatch.setattr(demo.generate, "build_housing", lambda *args: HousingTables())
    without = generate(people=800)
    for name, table_rows in without.items():
        if not name.startswith("housing."):
            assert table_rows == with_housing[name], name


# --- The REST API -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def housing_file(rows: Rows, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("housing") / "housing.json"
    write_housing_data(path, rows)
    return path


@pytest.fixture
async def api(housing_file: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(HousingData.load(housing_file), TOKEN)
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://housing", headers=headers) as session:
        yield session


async def test_the_api_needs_the_service_token(api: httpx.AsyncClient) -> None:
    for headers in ({"Authorization": ""}, {"Authorization": "Bearer not-the-token"}, {"Authorization": "Basic x"}):
        response = await api.get("/tenancies", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith('Bearer realm="housing"')
        assert response.json()["error"]["code"] in {"unauthorized", "invalid_token"}
    health = await api.get("/healthz", headers={"Authorization": ""})
    assert health.status_code == 200 and health.json()["status"] == "ok"


async def test_property_pages_cover_every_row_once(api: httpx.AsyncClient, rows: Rows) -> None:
    seen: list[dict[str, Any]] = []
    page = 1
    while True:
        body = (await api.get("/properties", params={"page": page, "page_size": 40})).json()
        seen.extend(body["data"])
        assert body["meta"] == {"page": page, "page_size": 40, "total": len(rows["housing.properties"])}
        if len(body["data"]) < 40:
            break
        page += 1
    assert [p["uprn"] for p in seen] == sorted(p["uprn"] for p in rows["housing.properties"])
    truth = {p["uprn"]: p for p in rows["housing.properties"]}
    for shown in seen:
        home = truth[shown["uprn"]]
        assert shown["address"] == {"line": home["address_line"], "postcode": home["postcode"]}
        if home["epc_rating"] is None:
            assert shown["epc"] is None
        else:
            assessed_on = home["epc_assessed_on"].isoformat()
            assert shown["epc"] == {
                "rating": home["epc_rating"],
                "score": home["epc_score"],
                "assessed_on": assessed_on,
            }


async def test_tenancy_cursors_cover_every_row_once(api: httpx.AsyncClient, rows: Rows) -> None:
    seen: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 25}
    while True:
        body = (await api.get("/tenancies", params=params)).json()
        seen.extend(body["items"])
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]
    expected = sorted(rows["housing.tenancies"], key=lambda t: t["tenancy_id"])
    assert [t["tenancy_id"] for t in seen] == [t["tenancy_id"] for t in expected]
    first = expected[0]
    assert seen[0]["rent_arrears"] == (None if first["rent_arrears"] is None else str(first["rent_arrears"]))
    assert seen[0]["start_date"] == first["start_date"].isoformat()


async def test_the_api_filters_on_key_columns(api: httpx.AsyncClient, rows: Rows) -> None:
    tenancies = rows["housing.tenancies"]
    people = sorted({t["council_person_id"] for t in tenancies})[:3]

    async def ids(path: str, params: Any) -> set[str]:
        body = (await api.get(path, params=params)).json()
        return {
            row["tenancy_id"] if "tenancy_id" in row else row["uprn"] for row in body.get("items", body.get("data"))
        }

    wanted = {t["tenancy_id"] for t in tenancies if t["council_person_id"] in people}
    assert await ids("/tenancies", [("council_person_id", p) for p in people]) == wanted  # repeated
    assert await ids("/tenancies", {"council_person_id": ",".join(people)}) == wanted  # comma-separated
    uprns = sorted({t["uprn"] for t in tenancies})[:4]
    assert await ids("/properties", {"uprn": ",".join(uprns)}) == set(uprns)
    assert await ids("/tenancies", {"uprn": uprns[0]}) == {t["tenancy_id"] for t in tenancies if t["uprn"] == uprns[0]}
    leeds = {p["uprn"] for p in rows["housing.properties"] if p["la_code"] == "E08000035"}
    assert await ids("/properties", {"la_code": "E08000035", "page_size": 500}) == leeds
    since = {t["tenancy_id"] for t in tenancies if date(2020, 1, 1) <= t["start_date"] <= date(2022, 12, 31)}
    window = {"start_date_from": "2020-01-01", "start_date_to": "2022-12-31", "limit": 500}
    assert since and await ids("/tenancies", window) == since


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/tenancies?nonsense=1", "unknown_parameter"),
        ("/tenancies?limit=0", "invalid_parameter"),
        ("/tenancies?cursor=Tk9QRQ", "invalid_cursor"),
        ("/tenancies?start_date_from=yesterday", "invalid_parameter"),
        ("/properties?page=-1", "invalid_parameter"),
        ("/properties?page_size=501", "invalid_parameter"),
        ("/properties?uprn=", "invalid_parameter"),
    ],
)
async def test_bad_requests_get_json_errors(api: httpx.AsyncClient, path: str, code: str) -> None:
    response = await api.get(path)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code


async def test_unknown_paths_and_methods_get_json_errors(api: httpx.AsyncClient) -> None:
    missing = await api.get("/owners")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    wrong = await api.post("/tenancies")
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "method_not_allowed"


def test_the_token_file_is_private_and_stable(tmp_path: Path) -> None:
    path = tmp_path / "data" / "housing-api-token"
    token = load_or_create_token(path)
    assert len(token) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_token(path) == token
    assert service_token({}, path) == token  # the API falls back to the demo's file
    assert service_token({TOKEN_ENV: "from-the-environment"}, path) == "from-the-environment"
    assert service_token({}, tmp_path / "missing") is None
    with pytest.raises(ValueError, match="16"):
        create_app(HousingData([], []), "short")


# --- The API in its own process, stopped on its own -------------------------------------------------


async def test_stopping_the_housing_process_leaves_the_rest_answering(tmp_path: Path) -> None:
    async with demo_federation(tmp_path, people=600) as federation:
        port = free_port()
        variant = write_catalog_variant(
            federation.directory / "catalog.yaml",
            federation.data / "catalog.process.yaml",
            (),
            housing_url=f"http://127.0.0.1:{port}",
        )
        catalog = load_catalog(variant)
        settings = federation.settings
        service = start_housing_api(
            host="127.0.0.1", port=port, data=federation.data / "housing.json", token=TOKEN, quiet=True
        )
        gateway = Gateway(catalog, settings, GuardedAdapters(catalog), federation.policy(catalog))
        await gateway.start()
        query = (
            '{ socialCare { clients(where: {laCode: {eq: "E08000035"}}, limit: 200) { clientId '
            "tenancies { tenancyId } } } }"
        )
        worker = client(settings, "social-worker-app")
        try:
            with pytest.raises(ServiceError, match=f"port {port} on 127.0.0.1 is already in use"):
                start_housing_api(host="127.0.0.1", port=port, data=federation.data / "housing.json", token=TOKEN)
            before = await run(gateway, query, None, worker)
            assert before.errors == []
            clients = orjson.loads(dumps(before.data))["socialCare"]["clients"]
            assert any(c["tenancies"] for c in clients)

            service.stop()
            assert service.process.returncode is not None
            after = await run(gateway, query, None, worker)
            partial = orjson.loads(dumps(after.data))["socialCare"]["clients"]
            assert [c["clientId"] for c in partial] == [c["clientId"] for c in clients]  # social care still answers
            assert all(c["tenancies"] is None for c in partial)
            assert {e["extensions"]["code"] for e in after.errors} == {"SOURCE_UNAVAILABLE"}
            assert {e["extensions"]["department"] for e in after.errors} == {"housing"}
            service.stop()  # stopping twice is harmless
        finally:
            service.stop()
            await gateway.stop()
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0  # the port is free again


def test_the_housing_api_refuses_to_start_without_a_token_or_data(tmp_path: Path) -> None:
    environment = {key: value for key, value in os.environ.items() if key != TOKEN_ENV}
    command = [sys.executable, "-m", "fedgate_demo.housing_api", "--data", str(tmp_path / "housing.json")]  # installed
    options: dict[str, Any] = {"cwd": tmp_path, "capture_output": True, "text": True, "timeout": 60, "check": False}
    no_token = subprocess.run([*command, "--token-file", str(tmp_path / "none")], env=environment, **options)
    assert no_token.returncode == 2 and TOKEN_ENV in no_token.stderr
    no_data = subprocess.run(command, env={**environment, TOKEN_ENV: TOKEN}, **options)
    assert no_data.returncode == 2 and "housing.json is missing" in no_data.stderr
