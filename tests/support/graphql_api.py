"""A small remote GraphQL API over the clinic fixture (graphql-core), served for real on loopback.

``people`` is a Relay connection filtered by a ``where`` input object, ``visits`` pages by offset with
plain arguments, and ``council.cases`` sits inside a namespace object and is not paged. Dates, datetimes
and decimals are custom scalars carried as strings. Every request (document, variables, headers) is
recorded; like the REST API it can be told to ignore an argument, fail, or demand a credential.
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from graphql import GraphQLError, build_schema, graphql
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fixtures.clinic_data import CASES, PEOPLE, VISITS

SDL = """
scalar Date
scalar DateTime
scalar Decimal

input StringFilter { eq: String, in: [String!] }
input DateFilter { gte: Date }
input BooleanFilter { eq: Boolean }
input PersonWhere { personId: StringFilter, nhsNumber: StringFilter, born: DateFilter, active: BooleanFilter }

type Name { given: String!, family: String }
type Person {
  personId: String!, nhsNumber: String, name: Name!, born: Date, score: Float, balance: Decimal,
  active: Boolean, updatedAt: DateTime, visitCount: Int, postcode: String
}
type PersonEdge { node: Person!, cursor: String! }
type PageInfo { hasNextPage: Boolean!, endCursor: String }
type PersonConnection { edges: [PersonEdge!]!, pageInfo: PageInfo! }
type Visit { visitId: Int!, personId: String!, at: DateTime!, kind: String!, cost: Decimal }
type Case { caseId: String!, nhsNumber: String, opened: Date!, status: String!, notes: String }
type Council { cases(nhsNumbers: [String!], status: String): [Case!]! }
type Query {
  people(where: PersonWhere, first: Int, after: String): PersonConnection!
  visits(personIds: [String!], visitId: Int, kind: String, limit: Int!, offset: Int!): [Visit!]!
  council: Council!
}
"""


def _json(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _person(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "personId": row["person_id"],
        "nhsNumber": row["nhs_number"],
        "name": {"given": row["given_name"], "family": row["family_name"]},
        "born": _json(row["born"]),
        "score": row["score"],
        "balance": _json(row["balance"]),
        "active": row["active"],
        "updatedAt": _json(row["updated_at"]),
        "visitCount": row["visit_count"],
        "postcode": row["postcode"],
    }


@dataclass
class Recorded:
    query: str
    variables: dict[str, Any]
    headers: dict[str, str]


@dataclass
class GraphQLBehaviour:
    ignored: set[str] = field(default_factory=set)
    status: int | None = None
    #: Answer every query with this GraphQL error code (``extensions.code``).
    error_code: str | None = None
    required_authorization: str | None = None


class RemoteGraphQL:
    """The remote API; :attr:`log` holds every request."""

    def __init__(self, ignored: frozenset[str] = frozenset()) -> None:
        self.schema = build_schema(SDL)
        self.log: list[Recorded] = []
        #: Arguments always accepted and never applied (a careless API).
        self.always_ignored = ignored
        self.behaviour = GraphQLBehaviour()
        self.app = Starlette(routes=[Route("/graphql", self._serve, methods=["POST"])])

    def reset(self) -> None:
        self.log.clear()
        self.behaviour = GraphQLBehaviour()

    def _ignored(self) -> set[str]:
        return self.behaviour.ignored | self.always_ignored

    def _people(
        self, info: Any, where: dict[str, Any] | None = None, first: int = 100, after: str | None = None
    ) -> Any:
        rows = sorted(PEOPLE, key=lambda row: row["person_id"])
        where = {} if "where" in self._ignored() else (where or {})
        if (person := where.get("personId")) and person.get("eq") is not None:
            rows = [row for row in rows if row["person_id"] == person["eq"]]
        if (nhs := where.get("nhsNumber")) and nhs.get("in") is not None:
            rows = [row for row in rows if row["nhs_number"] in nhs["in"]]
        if (born := where.get("born")) and born.get("gte") is not None:
            since = dt.date.fromisoformat(born["gte"])
            rows = [row for row in rows if row["born"] is not None and row["born"] >= since]
        if (active := where.get("active")) and active.get("eq") is not None:
            rows = [row for row in rows if row["active"] is active["eq"]]
        start = int(base64.b64decode(after).decode()) if after else 0
        chosen = rows[start : start + first]
        edges = [
            {"node": _person(row), "cursor": base64.b64encode(str(start + index + 1).encode()).decode()}
            for index, row in enumerate(chosen)
        ]
        more = start + first < len(rows)
        return {"edges": edges, "pageInfo": {"hasNextPage": more, "endCursor": edges[-1]["cursor"] if edges else None}}

    def _visits(self, info: Any, limit: int, offset: int, **arguments: Any) -> Any:
        rows = sorted(VISITS, key=lambda row: row["visit_id"])
        arguments = {name: value for name, value in arguments.items() if name not in self._ignored()}
        if arguments.get("personIds") is not None:
            rows = [row for row in rows if row["person_id"] in arguments["personIds"]]
        if arguments.get("visitId") is not None:
            rows = [row for row in rows if row["visit_id"] == arguments["visitId"]]
        if arguments.get("kind") is not None:
            rows = [row for row in rows if row["kind"] == arguments["kind"]]
        return [
            {
                "visitId": row["visit_id"],
                "personId": row["person_id"],
                "at": _json(row["at"]),
                "kind": row["kind"],
                "cost": _json(row["cost"]),
            }
            for row in rows[offset : offset + limit]
        ]

    def _cases(self, info: Any, nhsNumbers: list[str] | None = None, status: str | None = None) -> Any:
        rows = sorted(CASES, key=lambda row: row["case_id"])
        if nhsNumbers is not None and "nhsNumbers" not in self._ignored():
            rows = [row for row in rows if row["nhs_number"] in nhsNumbers]
        if status is not None and "status" not in self._ignored():
            rows = [row for row in rows if row["status"] == status]
        return [
            {
                "caseId": row["case_id"],
                "nhsNumber": row["nhs_number"],
                "opened": _json(row["opened"]),
                "status": row["status"],
                "notes": row["notes"],
            }
            for row in rows
        ]

    async def _serve(self, request: Request) -> Response:
        body = await request.json()
        query, variables = body.get("query", ""), body.get("variables") or {}
        self.log.append(Recorded(query, variables, dict(request.headers)))
        behaviour = self.behaviour
        required = behaviour.required_authorization
        if required is not None and request.headers.get("authorization") != required:
            return JSONResponse({"errors": [{"message": "who are you?"}]}, status_code=401)
        if behaviour.status is not None:
            return JSONResponse({"errors": [{"message": "failing"}]}, status_code=behaviour.status)
        if behaviour.error_code is not None:
            error = {"message": "refused: 9990000001", "extensions": {"code": behaviour.error_code}}
            return JSONResponse({"data": None, "errors": [error]})
        root = {"people": self._people, "visits": self._visits, "council": {"cases": self._cases}}
        result = await graphql(self.schema, query, root_value=root, variable_values=variables)
        payload: dict[str, Any] = {"data": result.data}
        if result.errors:
            payload["errors"] = [_error(error) for error in result.errors]
        return JSONResponse(payload)


def _error(error: GraphQLError) -> dict[str, Any]:
    return {"message": error.message, "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"}}
