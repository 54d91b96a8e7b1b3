"""What the CLI's commands share: the Typer app, consoles and loading configuration with clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from gateway.errors import ConfigError
from gateway.policy.store import Policy, policy_from_settings
from gateway.settings import Settings, load_settings
from schema.catalog import Catalog, load_catalog

app = typer.Typer(no_args_is_help=True, add_completion=False, help="fedgate: a federated GraphQL gateway.")
console = Console()
errors = Console(stderr=True)

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="Settings file (fedgate.yaml).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``message`` (verbatim: paths like ``scopes[x]`` are not markup) and return the exit to raise."""
    errors.print(Text.assemble(("fedgate: ", "bold red"), message), highlight=False, soft_wrap=True)
    return typer.Exit(code)


def load_settings_or_exit(config: Path) -> Settings:
    try:
        return load_settings(config)
    except ConfigError as error:
        raise fail(str(error)) from None


def load_all_or_exit(config: Path, *, resolve_secrets: bool = False) -> tuple[Settings, Catalog, Policy | None]:
    """Settings, catalog and policy (None when there is no policy file), or exit 2 listing every problem."""
    settings = load_settings_or_exit(config)
    try:
        catalog = load_catalog(settings.catalog_path, resolve_secrets=resolve_secrets)
        policy = policy_from_settings(settings, catalog, read_secret=resolve_secrets)
    except ConfigError as error:
        raise fail(str(error)) from None
    return settings, catalog, policy
