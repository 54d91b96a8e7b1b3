"""What the CLI's commands share: the Typer app, consoles, the settings file rule, and clear errors.

Every command that reads settings finds them by one rule: ``--config FILE``, else ``$FEDGATE_CONFIG``,
else ``./fedgate.yaml``, else it stops with one line saying so. Operator errors (a bad file, a busy port,
a missing variable) end with one line on standard error and exit code 2: never a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from gateway.errors import ConfigError
from gateway.policy.store import Policy, policy_from_settings
from gateway.settings import CONFIG_ENV, Settings, load_settings
from schema.catalog import Catalog, load_catalog

DEFAULT_CONFIG = Path("fedgate.yaml")

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="fedgate: a federated GraphQL gateway.",
)
console = Console()
errors = Console(stderr=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        envvar=CONFIG_ENV,
        show_envvar=True,
        help="Settings file (default: $FEDGATE_CONFIG, else ./fedgate.yaml).",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


def port_option(help: str) -> Any:
    """A ``--...-port`` option: an integer from 1 to 65535, refused with exit 2 otherwise."""
    return typer.Option(min=1, max=65535, help=help)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``message`` (verbatim: paths like ``scopes[x]`` are not markup) and return the exit to raise."""
    errors.print(Text.assemble(("fedgate: ", "bold red"), message), highlight=False, soft_wrap=True)
    return typer.Exit(code)


def settings_path(config: Path | None) -> Path:
    """The settings file by the one rule: the option (or $FEDGATE_CONFIG), else ./fedgate.yaml, else exit 2."""
    if config is not None:
        return config
    if DEFAULT_CONFIG.is_file():
        return DEFAULT_CONFIG
    raise fail(
        f"no settings file: pass --config FILE, set {CONFIG_ENV}, or run where fedgate.yaml is "
        "(`fedgate demo` writes its own as demo/data/fedgate.PORT.yaml)"
    )


def load_settings_or_exit(config: Path | None) -> Settings:
    try:
        return load_settings(settings_path(config))
    except ConfigError as error:
        raise fail(str(error)) from None


def load_all_or_exit(config: Path | None) -> tuple[Settings, Catalog, Policy | None]:
    """Settings, catalog and policy (None when there is no policy file), or exit 2 listing every problem.

    For the tools that read the policy without connecting or deriving keys (``scopes``, ``whocan``,
    ``explain``): secrets are neither read nor required. ``serve`` and ``check`` load everything with
    :func:`gateway.configuration.load_configuration` instead."""
    settings = load_settings_or_exit(config)
    try:
        catalog = load_catalog(settings.catalog_path, resolve_secrets=False)
        policy = policy_from_settings(settings, catalog, None)  # no key is derived
    except ConfigError as error:
        raise fail(str(error)) from None
    return settings, catalog, policy
