"""The ``fedgate`` command."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
import yaml
from rich.console import Console
from rich.panel import Panel

from gateway.errors import ConfigError, FedgateError
from gateway.logs import configure_logging
from gateway.settings import Settings, load_settings
from schema.catalog import load_catalog

app = typer.Typer(no_args_is_help=True, add_completion=False, help="fedgate: a federated GraphQL gateway.")
console = Console()
errors = Console(stderr=True)

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="Settings file (fedgate.yaml).", exists=False)]


def _load(config: Path) -> Settings:
    try:
        return load_settings(config)
    except ConfigError as error:
        errors.print(f"[bold red]fedgate:[/] {error}", markup=True, highlight=False)
        raise typer.Exit(2) from None


def _serve(settings: Settings, host: str | None, port: int | None) -> None:
    from gateway.app import create_app

    configure_logging(settings.logging)
    try:
        application = create_app(settings)
    except ConfigError as error:
        errors.print(f"[bold red]fedgate:[/] {error}", markup=True, highlight=False)
        raise typer.Exit(2) from None
    uvicorn.run(
        application,
        host=host or settings.server.host,
        port=port if port is not None else settings.server.port,
        log_config=None,
        access_log=False,
        server_header=False,
    )


@app.command()
def serve(
    config: ConfigOption = Path("fedgate.yaml"),
    host: Annotated[str | None, typer.Option(help="Override server.host.")] = None,
    port: Annotated[int | None, typer.Option(help="Override server.port.")] = None,
) -> None:
    """Serve the gateway described by a settings file."""
    _serve(_load(config), host, port)


@app.command()
def demo(
    port: Annotated[int | None, typer.Option(help="Port to serve on (default 8000).")] = None,
    regenerate: Annotated[bool, typer.Option(help="Rebuild the demo departments' data.")] = False,
) -> None:
    """Build the demo departments if needed and serve them, with example queries."""
    from demo.run import SETTINGS_FILE, ensure_data, examples

    settings = _load(SETTINGS_FILE)
    catalog = load_catalog(settings.catalog_path)
    written = ensure_data(catalog, regenerate=regenerate)
    if written:
        console.print(f"Generated {len(written)} demo department databases in {written[0].parent}")
    actual_port = port if port is not None else settings.server.port
    url = f"http://{settings.server.host}:{actual_port}/graphql"
    console.print(Panel.fit(f"GraphiQL: [bold]{url}[/]  (open it in a browser)\nReady check: {url[:-8]}/readyz"))
    for example in examples(catalog):
        console.print(f"\n[bold]{example.title}[/]")
        console.print(example.query, highlight=False, markup=False, soft_wrap=True)
    console.print()
    _serve(settings, None, actual_port)


@app.command()
def check(config: ConfigOption = Path("fedgate.yaml")) -> None:
    """Validate the settings and catalog; exit non-zero on any problem (for deployment pipelines)."""
    settings = _load(config)
    try:
        catalog = load_catalog(settings.catalog_path, resolve_secrets=False)
    except ConfigError as error:
        errors.print(f"[bold red]fedgate:[/] {error}", markup=True, highlight=False)
        raise typer.Exit(2) from None
    tables = sum(len(department.tables) for department in catalog.departments)
    console.print(f"ok: {len(catalog.departments)} departments, {tables} tables")


@app.command()
def introspect(
    url: Annotated[str, typer.Argument(help="sqlite:///path.db, postgresql://user@host/db or mysql://user@host/db")],
    department: Annotated[str, typer.Option(help="Name of the department in the catalog.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of printing.")] = None,
    password_env: Annotated[
        str | None, typer.Option(help="Environment variable holding the database password.")
    ] = None,
) -> None:
    """Read a live database's tables and write a catalog skeleton to edit."""
    from schema.introspect import catalog_skeleton

    try:
        skeleton = asyncio.run(catalog_skeleton(url, department, password_env))
    except FedgateError as error:
        errors.print(f"[bold red]fedgate:[/] {error.message}", highlight=False)
        raise typer.Exit(1) from None
    text = yaml.safe_dump(skeleton, sort_keys=False, allow_unicode=True, width=110)
    if output is None:
        console.print(text, highlight=False, markup=False)
    else:
        output.write_text(text, encoding="utf-8")
        console.print(f"wrote {output}")


def main() -> None:
    app()
