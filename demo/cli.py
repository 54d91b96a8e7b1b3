"""``fedgate demo``: build the demo departments if needed and serve them, with the dev issuer.

The command belongs to the demo, not to the gateway: the gateway's CLI finds it through the
``fedgate.commands`` entry point (:func:`register`) and never imports this package itself.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.panel import Panel

from gateway.cli.common import console, errors, fail, load_settings_or_exit, port_option
from gateway.cli.run_commands import run_gateway
from gateway.errors import FedgateError
from gateway.graphiql_assets import fetch_assets, missing_assets
from gateway.listening import ensure_free
from gateway.settings import CONFIG_ENV, Settings

if TYPE_CHECKING:
    from .run import Demo

HELP = (
    "Build the demo departments if needed and serve them, with the dev issuer and example queries.\n\n"
    "The gateway (--port, default 8000) and the development OAuth server (--issuer-port, default 8001) run "
    "in this process; the housing department's REST API (--housing-port, default 8002) runs in its own, "
    "started and stopped with the demo. The settings it runs with are written to "
    "demo/data/fedgate.<port>.yaml for `fedgate token --config ...` and the other commands. "
    "--backends postgres,mariadb moves health to PostgreSQL and DWP to MariaDB on this machine's servers."
)


def register(app: typer.Typer) -> None:
    """Add ``fedgate demo`` to the command (the ``fedgate.commands`` entry point)."""
    app.command("demo", help=HELP)(demo)


def demo(
    port: Annotated[int, port_option("Port to serve the gateway on.")] = 8000,
    issuer_port: Annotated[int, port_option("Port for the development OAuth server.")] = 8001,
    housing_port: Annotated[int, port_option("Port for the housing department's REST API.")] = 8002,
    regenerate: Annotated[bool, typer.Option(help="Rebuild the demo departments' data.")] = False,
    backends: Annotated[
        str,
        typer.Option(
            help="Database servers to move departments to, comma-separated: postgres (health, into "
            "PostgreSQL on 127.0.0.1:5432 as user postgres) and/or mariadb (DWP, into MariaDB on "
            "127.0.0.1:3306 as root). The data is reloaded on every start; the other departments stay "
            "SQLite, housing stays REST. Default: everything embedded (SQLite + REST)."
        ),
    ] = "",
) -> None:
    """``fedgate demo``: see the help above."""
    try:  # the generator needs the demo's extra (Faker); the rest of fedgate does not
        from .backends import BackendError, parse_backends
        from .housing_api import TOKEN_ENV
        from .run import DATA_DIR, SETTINGS_FILE, Ports, examples, prepare, write_settings
        from .services import ServiceError, start_housing_api
    except ImportError as error:
        raise fail(f"the demo needs its extra ({error.name} is missing): pip install 'fedgate[demo]'") from None
    ports = Ports(port, issuer_port, housing_port)
    if len({port, issuer_port, housing_port}) < 3:
        raise fail(
            f"the demo needs three different ports; got gateway {port}, issuer {issuer_port}, housing {housing_port}"
        )
    try:
        parse_backends(backends)  # the arguments first, then the machine
        for what, number in (
            ("the gateway", port),
            ("the development issuer", issuer_port),
            ("the housing API", housing_port),
        ):
            ensure_free("127.0.0.1", number, what=what)
        plan = prepare(
            load_settings_or_exit(SETTINGS_FILE), regenerate=regenerate, backends=backends, housing_port=housing_port
        )
        settings_file = write_settings(SETTINGS_FILE, DATA_DIR, ports, plan.settings.catalog_path)
    except (BackendError, FedgateError) as error:
        raise fail(str(error)) from None
    settings = load_settings_or_exit(settings_file)
    if plan.written:
        console.print(f"Generated {len(plan.written)} demo department files in {plan.written[0].parent}")
    if plan.generated_key is not None:
        console.print(f"Generated the audit's checkpoint signing key in {plan.generated_key} (the demo only: "
                      "a deployment names its own key, audit.signing_key_file)")  # fmt: skip
    assets = settings.graphiql.assets_path
    if assets is not None and missing_assets(assets):
        try:
            fetch_assets(assets)
            console.print(f"Fetched GraphiQL's assets into {assets} (once; served by the gateway from now on)")
        except Exception as error:
            errors.print(
                f"[yellow]warning:[/] cannot fetch GraphiQL's assets ({error}); the page will say how to fix it"
            )
    try:
        housing = start_housing_api(
            host="127.0.0.1", port=housing_port, data=plan.housing_data, token=os.environ[TOKEN_ENV]
        )
    except ServiceError as error:
        raise fail(str(error)) from None
    try:
        _print_demo(plan, settings, settings_file, housing.pid)
        for example in examples(plan.catalog, plan.housing_data):
            console.print(f"\n[bold]{example.title}[/] (client: {example.client})")
            headers = ", ".join(f'"{name}": "{value}"' for name, value in example.headers.items())
            console.print(f"Headers: {{{headers}}}", highlight=False, markup=False, soft_wrap=True)
            console.print(example.query, highlight=False, markup=False, soft_wrap=True)
        console.print()
        run_gateway(settings_file, demo=True)  # creates the dev issuer's state on first run
    finally:
        housing.stop()


def _print_demo(plan: Demo, settings: Settings, settings_file: Path, housing_pid: int) -> None:
    assert settings.dev_issuer is not None
    url = f"http://{settings.server.host}:{settings.server.port}/graphql"
    clients = "\n".join(f"  {client.id:<18} {client.name}" for client in settings.dev_issuer.clients)
    servers = "".join(
        f"\n          {p.department}: {p.server.title} on {p.server.host}:{p.server.port}, database {p.database}"
        for p in plan.placements
    )
    shown = _relative(settings_file)
    console.print(
        Panel.fit(
            f"GraphiQL: [bold]{url}[/]  (open it in a browser)\n"
            f"Token:    [bold]fedgate token --config {shown} --client mash-case-app[/]\n"
            '          then, in GraphiQL\'s Headers tab: {"Authorization": "Bearer <token>",\n'
            '          "Fedgate-Purpose": "safeguarding", "Fedgate-Justification": "<why you are asking>"}\n'
            "Purpose:  every request states why it is made (Fedgate-Purpose, or the token's purpose_of_use);\n"
            "          what it reads must be covered by an agreement for that purpose: "
            f"http://{settings.server.host}:{settings.server.port}/agreements\n"
            "Audit:    every access is recorded: [bold]fedgate audit query --subject <NHS number>[/], "
            "[bold]fedgate audit verify[/];\n"
            f"          in GraphiQL at http://{settings.server.host}:{settings.server.port}/audit/graphql as "
            'security-admin\n          with {"Fedgate-Purpose": "audit", "Fedgate-Justification": "<why>"}\n'
            f"Settings: [bold]export {CONFIG_ENV}={shown}[/] points every fedgate command at this demo\n"
            f"Services: gateway :{settings.server.port} and dev OAuth server :{settings.dev_issuer.port} "
            "(this process)\n"
            f"          housing REST API :{plan.housing_port} (pid {housing_pid}; "
            f"[bold]kill {housing_pid}[/] stops that department alone)\n"
            f"{_metrics_line(settings)}"
            f"Data:     SQLite files in {plan.housing_data.parent}{servers}\n"
            f"Clients:\n{clients}"
        )
    )


def _metrics_line(settings: Settings) -> str:
    metrics = settings.telemetry.metrics
    if not metrics.enabled:
        return ""
    url = f"http://{settings.server.host}:{settings.server.port}{metrics.path}"
    return f"Metrics:  {url} (Prometheus: watch housing's breaker and readiness when you kill it)\n"


def _relative(path: Path) -> Path:
    try:
        return path.resolve().relative_to(Path.cwd())
    except ValueError:
        return path
