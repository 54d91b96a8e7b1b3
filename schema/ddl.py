"""``CREATE TABLE`` statements for catalog tables, in each SQL dialect.

Used to load the demo departments and the test fixtures into SQLite, PostgreSQL and MariaDB from one
definition, so all three hold the same data with the same types. Not used against real departments:
fedgate never writes to a source.
"""

from __future__ import annotations

from sqlglot import ErrorLevel, exp

from schema.catalog import Catalog, Department, Table
from schema.types import ColumnType

_TYPES: dict[str, dict[ColumnType, str]] = {
    "sqlite": {
        ColumnType.STRING: "TEXT",
        ColumnType.INTEGER: "INTEGER",
        ColumnType.FLOAT: "REAL",
        ColumnType.DECIMAL: "NUMERIC",
        ColumnType.BOOLEAN: "BOOLEAN",
        ColumnType.DATE: "DATE",
        ColumnType.DATETIME: "DATETIME",
    },
    "postgres": {
        ColumnType.STRING: "TEXT",
        ColumnType.INTEGER: "BIGINT",
        ColumnType.FLOAT: "DOUBLE PRECISION",
        ColumnType.DECIMAL: "NUMERIC(14, 2)",
        ColumnType.BOOLEAN: "BOOLEAN",
        ColumnType.DATE: "DATE",
        ColumnType.DATETIME: "TIMESTAMPTZ",
    },
    "mysql": {
        ColumnType.STRING: "VARCHAR(255)",
        ColumnType.INTEGER: "BIGINT",
        ColumnType.FLOAT: "DOUBLE",
        ColumnType.DECIMAL: "DECIMAL(14, 2)",
        ColumnType.BOOLEAN: "BOOLEAN",
        ColumnType.DATE: "DATE",
        ColumnType.DATETIME: "DATETIME(6)",
    },
}


def _identifier(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


def _data_type(name: str, dialect: str) -> exp.DataType:
    """The type as written: SQLite keeps declared names (sqlglot would turn NUMERIC into REAL), and
    ``fedgate introspect`` reads them back."""
    if dialect == "sqlite":
        return exp.DataType(this=exp.DType.USERDEFINED, kind=name)
    return exp.DataType.build(name, dialect=dialect)


def create_table(table: Table, dialect: str) -> str:
    """``CREATE TABLE`` for ``table`` in ``dialect`` (sqlite, postgres or mysql)."""
    columns: list[exp.Expr] = []
    for column in table.columns:
        constraints = [] if column.nullable else [exp.ColumnConstraint(kind=exp.NotNullColumnConstraint())]
        columns.append(
            exp.ColumnDef(
                this=_identifier(column.name),
                kind=_data_type(_TYPES[dialect][column.type], dialect),
                constraints=constraints,
            )
        )
    columns.append(exp.PrimaryKey(expressions=[_identifier(name) for name in table.primary_key]))
    create = exp.Create(
        kind="TABLE", this=exp.Schema(this=exp.Table(this=_identifier(table.name)), expressions=columns)
    )
    return create.sql(dialect=dialect, unsupported_level=ErrorLevel.RAISE)


def create_indexes(catalog: Catalog, department: Department, table: Table, dialect: str) -> list[str]:
    """Indexes on the columns relationships join on (both ends), so batched look-ups are index scans."""
    joined: set[str] = set()
    for relationship in table.relationships:
        joined.update(relationship.on.keys())
    for other in catalog.departments:
        for other_table in other.tables:
            for relationship in other_table.relationships:
                if relationship.target == f"{department.name}.{table.name}":
                    joined.update(relationship.on.values())
    statements = []
    for column in sorted(joined - set(table.primary_key[:1])):
        index = exp.Create(
            kind="INDEX",
            this=exp.Index(
                this=_identifier(f"{table.name}_{column}_idx"),
                table=exp.Table(this=_identifier(table.name)),
                params=exp.IndexParameters(columns=[exp.column(column, quoted=True)]),
            ),
        )
        statements.append(index.sql(dialect=dialect, unsupported_level=ErrorLevel.RAISE))
    return statements
