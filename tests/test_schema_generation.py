"""The GraphQL schema generated from the catalog: names, types, arguments, descriptions."""

from __future__ import annotations

from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    get_named_type,
)

from schema.catalog import load_catalog
from schema.graphql_types import GatewaySchema, PageSizes, build_schema
from tests.conftest import CLINIC_CATALOG


def _schema() -> GatewaySchema:
    return build_schema(load_catalog(CLINIC_CATALOG), PageSizes(default=25, maximum=250))


def _object(schema: GatewaySchema, name: str) -> GraphQLObjectType:
    type_ = schema.graphql.get_type(name)
    assert isinstance(type_, GraphQLObjectType), name
    return type_


def _input(schema: GatewaySchema, name: str) -> GraphQLInputObjectType:
    type_ = schema.graphql.get_type(name)
    assert isinstance(type_, GraphQLInputObjectType), name
    return type_


def test_one_namespace_per_department_with_list_and_lookup_fields() -> None:
    schema = _schema()
    query = _object(schema, "Query")
    assert list(query.fields) == ["clinic", "council"]
    assert query.fields["clinic"].description == "Test clinic. People and their visits."
    clinic = _object(schema, "ClinicQuery")
    assert list(clinic.fields) == ["people", "person", "visits", "visit"]
    people = clinic.fields["people"]
    assert isinstance(people.type, GraphQLList)  # nullable list: a failing department gives null, not []
    assert isinstance(people.type.of_type, GraphQLNonNull)
    assert get_named_type(people.type).name == "ClinicPerson"


def test_list_arguments_page_sizes_filters_and_ordering() -> None:
    people = _object(_schema(), "ClinicQuery").fields["people"]
    assert list(people.args) == ["where", "orderBy", "limit", "offset"]
    assert people.args["limit"].default_value == 25
    assert "at most 250" in (people.args["limit"].description or "")
    assert get_named_type(people.args["where"].type).name == "ClinicPersonFilter"
    assert get_named_type(people.args["orderBy"].type).name == "ClinicPersonOrderBy"


def test_lookup_takes_the_primary_key_as_required_arguments() -> None:
    person = _object(_schema(), "ClinicQuery").fields["person"]
    assert list(person.args) == ["personId"]
    argument_type = person.args["personId"].type
    assert isinstance(argument_type, GraphQLNonNull)
    assert get_named_type(argument_type).name == "String"
    assert get_named_type(person.type).name == "ClinicPerson"


def test_columns_are_nullable_camel_case_with_catalog_descriptions_and_types() -> None:
    person = _object(_schema(), "ClinicPerson")
    expected_types = {
        "personId": "String",
        "nhsNumber": "String",
        "givenName": "String",
        "born": "Date",
        "score": "Float",
        "balance": "Decimal",
        "active": "Boolean",
        "updatedAt": "DateTime",
        "visitCount": "Int",
    }
    for name, type_name in expected_types.items():
        field: GraphQLField = person.fields[name]
        assert not isinstance(field.type, GraphQLNonNull), name  # masks and failures may null any cell
        assert get_named_type(field.type).name == type_name, name
    assert person.fields["givenName"].description == "Given name."
    assert person.description == "A person known to the clinic."


def test_relationships_many_are_paginated_lists_and_one_are_objects() -> None:
    schema = _schema()
    person = _object(schema, "ClinicPerson")
    visits, cases = person.fields["visits"], person.fields["cases"]
    assert isinstance(visits.type, GraphQLList)
    assert list(visits.args) == ["where", "orderBy", "limit", "offset"]
    assert get_named_type(cases.type).name == "CouncilCase"  # across departments
    visitor = _object(schema, "ClinicVisit").fields["person"]
    assert isinstance(visitor.type, GraphQLObjectType)
    assert visitor.args == {}


def test_comparison_operators_fit_each_type() -> None:
    schema = _schema()
    assert set(_input(schema, "StringComparison").fields) == {
        "eq", "ne", "in", "lt", "lte", "gt", "gte", "like", "isNull"
    }  # fmt: skip
    assert "like" not in _input(schema, "IntComparison").fields
    assert set(_input(schema, "BooleanComparison").fields) == {"eq", "ne", "in", "isNull"}
    filter_type = _input(schema, "ClinicPersonFilter")
    assert {"and", "or", "not", "givenName", "born"} <= set(filter_type.fields)
    assert get_named_type(filter_type.fields["born"].type).name == "DateComparison"
    order = _input(schema, "ClinicPersonOrderBy")
    assert "active" not in order.fields  # booleans are not orderable
    direction = get_named_type(order.fields["givenName"].type)
    assert isinstance(direction, GraphQLEnumType)
    assert list(direction.values) == ["ASC", "DESC"]


def test_bindings_map_fields_back_to_the_catalog() -> None:
    schema = _schema()
    binding = schema.binding("ClinicPerson", "cases")
    assert binding is not None
    assert binding.kind == "relationship"
    assert binding.relationship is not None
    assert binding.relationship.target == "council.cases"
    column = schema.binding("ClinicPerson", "updatedAt")
    assert column is not None
    assert column.column is not None
    assert column.column.name == "updated_at"
