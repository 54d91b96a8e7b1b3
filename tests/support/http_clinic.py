"""The clinic fixture served over HTTP: as a REST API and as a remote GraphQL API, with catalogs for both.

The REST catalog declares some filters and not others, and one pagination style per table:

* ``clinic.people``: page numbers (4 a page), rows under ``data``, names nested (``name.given``), an
  extra field the catalog does not know; filters on ``person_id``, ``nhs_number`` (comma list, 3 a
  request), ``given_name`` (the API matches it case-insensitively: looser than fedgate), ``born``
  ranges, ``updated_at``, ``active``;
* ``clinic.visits``: offsets (3 a page), rows under ``results``; ``person_id`` as a repeated list of at
  most 2 values (so child levels are split into several requests), ``visit_id``, and ``kind``, which the
  API is told to ignore;
* ``council.cases``: cursors (2 a page), rows under ``items``; ``nhs_number`` (comma list), ``status``.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml

from gateway.service import Gateway
from schema.catalog import Catalog, load_catalog
from schema.configfile import load_yaml
from tests.fixtures.clinic_data import ROWS
from tests.support.rest_api import Filter, RestApi, Table

CLINIC_CATALOG = Path(__file__).parents[1] / "fixtures" / "clinic_catalog.yaml"


def _types() -> dict[str, dict[str, Any]]:
    catalog = load_catalog(CLINIC_CATALOG)
    return {
        table.name: {column.name: column.type for column in table.columns}
        for department in catalog.departments
        for table in department.tables
    }


def _person_shape(row: dict[str, Any]) -> dict[str, Any]:
    shaped = {key: value for key, value in row.items() if key not in {"given_name", "family_name", "updated_at"}}
    shaped["name"] = {"given": row["given_name"], "family": row["family_name"]}
    shaped["meta"] = {"updated": None if row["updated_at"] is None else row["updated_at"].isoformat()}
    shaped["internal_note"] = "not for fedgate"
    return shaped


def clinic_rest_api() -> RestApi:
    """The clinic and council departments' REST APIs (one server; paths /clinic/... and /council/...)."""
    types = _types()

    def ordered(table: str, key: str) -> list[dict[str, Any]]:
        return sorted(ROWS[table], key=lambda row: row[key])

    return RestApi(
        {
            "/clinic/people": Table(
                ordered("clinic.people", "person_id"),
                types["people"],
                "person_id",
                pagination="page",
                wrap="data",
                filters={
                    "id": Filter("person_id"),
                    "nhs": Filter("nhs_number", "in", comma=True),
                    "given": Filter("given_name", "ieq"),
                    "born_from": Filter("born", "gte"),
                    "born_before": Filter("born", "lt"),
                    "updated_after": Filter("updated_at", "gt"),
                    "active": Filter("active"),
                },
                shape=_person_shape,
            ),
            "/clinic/visits": Table(
                ordered("clinic.visits", "visit_id"),
                types["visits"],
                "visit_id",
                pagination="offset",
                wrap="results",
                filters={
                    "person": Filter("person_id", "in"),
                    "id": Filter("visit_id"),
                    "kind": Filter("kind", ignored=True),
                },
            ),
            "/council/cases": Table(
                ordered("council.cases", "case_id"),
                types["cases"],
                "case_id",
                pagination="cursor",
                filters={"nhs": Filter("nhs_number", "in", comma=True), "status": Filter("status")},
            ),
        }
    )


REST_MAPPINGS: dict[str, dict[str, Any]] = {
    "people": {
        "path": "/people",
        "rows": "data",
        "pagination": {"style": "page", "size": 4},
        "fields": {"given_name": "name.given", "family_name": "name.family", "updated_at": "meta.updated"},
        "filters": [
            {"column": "person_id", "param": "id"},
            {"column": "nhs_number", "operator": "in", "param": "nhs", "list_style": "comma", "max_values": 3},
            {"column": "given_name", "param": "given"},
            {"column": "born", "operator": "gte", "param": "born_from"},
            {"column": "born", "operator": "lt", "param": "born_before"},
            {"column": "updated_at", "operator": "gt", "param": "updated_after"},
            {"column": "active", "param": "active"},
        ],
    },
    "visits": {
        "path": "/visits",
        "rows": "results",
        "pagination": {"style": "offset", "size": 3},
        "filters": [
            {"column": "person_id", "operator": "in", "param": "person", "max_values": 2},
            {"column": "visit_id", "param": "id"},
            {"column": "kind", "param": "kind"},
        ],
    },
    "cases": {
        "path": "/cases",
        "rows": "items",
        "pagination": {"style": "cursor", "next_cursor": "next", "size_param": "limit", "size": 2},
        "filters": [
            {"column": "nhs_number", "operator": "in", "param": "nhs", "list_style": "comma"},
            {"column": "status", "param": "status"},
        ],
    },
}

GRAPHQL_MAPPINGS: dict[str, dict[str, Any]] = {
    "people": {
        "field": "people",
        "pagination": {"style": "relay", "size": 4},
        "fields": {
            "person_id": "personId",
            "nhs_number": "nhsNumber",
            "given_name": "name.given",
            "family_name": "name.family",
            "updated_at": "updatedAt",
            "visit_count": "visitCount",
        },
        "arguments": [
            {"column": "person_id", "argument": "where.personId.eq", "type": "String!"},
            {"column": "nhs_number", "operator": "in", "argument": "where.nhsNumber.in", "type": "[String!]!"},
            {"column": "born", "operator": "gte", "argument": "where.born.gte", "type": "Date!"},
            {"column": "active", "argument": "where.active.eq", "type": "Boolean!"},
        ],
    },
    "visits": {
        "field": "visits",
        "pagination": {"style": "offset", "size": 3},
        "fields": {"visit_id": "visitId", "person_id": "personId"},
        "arguments": [
            {"column": "person_id", "operator": "in", "argument": "personIds", "type": "[String!]", "max_values": 2},
            {"column": "visit_id", "argument": "visitId", "type": "Int!"},
            {"column": "kind", "argument": "kind", "type": "String!"},
        ],
    },
    "cases": {
        "field": "council.cases",
        "fields": {"case_id": "caseId", "nhs_number": "nhsNumber"},
        "arguments": [
            {"column": "nhs_number", "operator": "in", "argument": "nhsNumbers", "type": "[String!]!"},
            {"column": "status", "argument": "status", "type": "String!"},
        ],
    },
}


def http_catalog_data(kind: str, urls: dict[str, str], **source: Any) -> dict[str, Any]:
    """The clinic catalog as data, its departments served by ``kind`` (rest or graphql) at ``urls``."""
    data = load_yaml(CLINIC_CATALOG).data
    mappings = REST_MAPPINGS if kind == "rest" else GRAPHQL_MAPPINGS
    for department in data["departments"]:
        location = {"base_url": urls[department["name"]]} if kind == "rest" else {"url": urls[department["name"]]}
        department["source"] = {"kind": kind, **location, **source}
        for table in department["tables"]:
            table[kind] = copy.deepcopy(mappings[table["name"]])
    return data


Api = TypeVar("Api")


class HttpClinic(Generic[Api]):
    """A clinic API served on loopback (``api`` at ``url``) and gateways over it, stopped by :meth:`stop`."""

    def __init__(self, kind: str, api: Api, url: str, urls: dict[str, str], directory: Path) -> None:
        self.kind = kind
        self.api = api
        self.url = url
        self.urls = urls
        self.directory = directory
        self.gateways: list[Gateway] = []

    def catalog(self, edit: Callable[[dict[str, Any]], None] | None = None, **source: Any) -> Catalog:
        data = http_catalog_data(self.kind, self.urls, **source)
        if edit is not None:
            edit(data)
        return load_catalog(write_http_catalog(self.directory, data))

    async def gateway(self, edit: Callable[[dict[str, Any]], None] | None = None, **source: Any) -> Gateway:
        from tests.conftest import started_gateway  # conftest serves this module's API: import late

        gateway = await started_gateway(self.catalog(edit, **source))
        self.gateways.append(gateway)
        return gateway

    async def stop(self) -> None:
        for gateway in self.gateways:
            await gateway.stop()


def write_http_catalog(directory: Path, data: dict[str, Any]) -> Path:
    path = directory / f"catalog-{uuid.uuid4().hex[:8]}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def http_clinic_catalog(
    directory: Path, kind: str, urls: dict[str, str], *, environ: dict[str, str] | None = None, **source: Any
) -> Catalog:
    path = write_http_catalog(directory, http_catalog_data(kind, urls, **source))
    if environ is None:
        return load_catalog(path)
    import os

    saved = {name: os.environ.get(name) for name in environ}
    os.environ.update(environ)
    try:
        return load_catalog(path)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
