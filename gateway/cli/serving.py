"""Commands that run fedgate: ``serve``, ``demo`` and ``token``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import httpx
import typer
from rich.panel import Panel

from gateway.auth.dev_issuer import DevIssuerState, refuse_outside_demo
from gateway.cli.common import ConfigOption, app, console, fail, load_settings_or_exit
from gateway.errors import ConfigError
from gateway.logs import configure_logging
from gateway.settings import Settings

if TYPE_CHECKING:
    from demo.run import Demo


def _run(
    settings: Settings, host: str | None, port: int | None, *, demo: bool, config: Path, workers: int | None = None
) -> None:
    from gateway.serving import check_workers, run_event_loop, serve, serve_workers

    configure_logging(settings.logging)
    host = host or settings.server.host
    port = settings.server.port if port is None else port
    workers = workers or settings.server.workers
    dev_issuer = None
    try:
        if settings.dev_issuer is not None and (demo or settings.dev_issuer.enabled):
            dev_issuer = refuse_outside_demo(settings.dev_issuer, demo=demo, file=str(config))
        check_workers(settings, workers, file=str(config), dev_issuer=dev_issuer is not None)
        if workers > 1:
            serve_workers(config, host, port, workers)
        else:
            run_event_loop(serve(settings, host, port, dev_issuer))
    except ConfigError as error:
        raise fail(str(error)) from None


@app.command()
def serve(
    config: ConfigOption = Path("fedgate.yaml"),
    host: Annotated[str | None, typer.Option(help="Override server.host.")] = None,
    port: Annotated[int | None, typer.Option(help="Override server.port.")] = None,
    workers: Annotated[int | None, typer.Option(min=1, max=256, help="Override server.workers.")] = None,
) -> None:
    """Serve the gateway described by a settings file."""
    _run(load_settings_or_exit(config), host, port, demo=False, config=config, workers=workers)


@app.command(
    help="Build the demo departments if needed and serve them, with the dev issuer and example queries.\n\n"
    "The gateway (:8000) and the development OAuth server (:8001) run in this process; the housing "
    "department's REST API (:8002) runs in its own, started and stopped with the demo. "
    "--backends postgres,mariadb moves health to PostgreSQL and DWP to MariaDB on this machine's servers."
)
def demo(
    port: Annotated[int | None, typer.Option(help="Port to serve the gateway on (default 8000).")] = None,
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
    housing_port: Annotated[int, typer.Option(help="Port for the housing department's REST API.")] = 8002,
) -> None:
    """``fedgate demo``: see the help above."""
    from demo.backends import BackendError
    from demo.housing_api import TOKEN_ENV
    from demo.run import SETTINGS_FILE, examples, prepare
    from demo.services import ServiceError, start_housing_api

    try:
        plan = prepare(
            load_settings_or_exit(SETTINGS_FILE), regenerate=regenerate, backends=backends, housing_port=housing_port
        )
    except (BackendError, ConfigError) as error:
        raise fail(str(error)) from None
    settings, catalog = plan.settings, plan.catalog
    if plan.written:
        console.print(f"Generated {len(plan.written)} demo department files in {plan.written[0].parent}")
    assert settings.dev_issuer is not None
    DevIssuerState.load_or_create(settings.dev_issuer)
    try:
        housing = start_housing_api(
            host="127.0.0.1", port=plan.housing_port, data=plan.housing_data, token=os.environ[TOKEN_ENV]
        )
    except ServiceError as error:
        raise fail(str(error)) from None
    try:
        _print_demo(plan, housing.pid, settings.server.port if port is None else port)
        for example in examples(catalog, plan.housing_data):
            console.print(f"\n[bold]{example.title}[/] (client: {example.client})")
            console.print(example.query, highlight=False, markup=False, soft_wrap=True)
        console.print()
        _run(settings, None, settings.server.port if port is None else port, demo=True, config=SETTINGS_FILE)
    finally:
        housing.stop()


def _print_demo(plan: Demo, housing_pid: int, port: int) -> None:
    from demo.run import DATA_DIR

    settings = plan.settings
    assert settings.dev_issuer is not None
    url = f"http://{settings.server.host}:{port}/graphql"
    clients = "\n".join(f"  {client.id:<18} {client.name}" for client in settings.dev_issuer.clients)
    servers = "".join(
        f"\n          {p.department}: {p.server.title} on {p.server.host}:{p.server.port}, database {p.database}"
        for p in plan.placements
    )
    console.print(
        Panel.fit(
            f"GraphiQL: [bold]{url}[/]  (open it in a browser)\n"
            f"Token:    [bold]fedgate token --client mash-case-app[/]  then, in GraphiQL's Headers tab:\n"
            '          {"Authorization": "Bearer <token>"}\n'
            f"Services: gateway :{port} and dev OAuth server :{settings.dev_issuer.port} (this process)\n"
            f"          housing REST API :{plan.housing_port} (pid {housing_pid}; "
            f"[bold]kill {housing_pid}[/] stops that department alone)\n"
            f"Data:     SQLite files in {DATA_DIR}{servers}\n"
            f"Clients:\n{clients}"
        )
    )


@app.command()
def token(
    client: Annotated[str, typer.Option("--client", help="A client id from dev_issuer.clients.")],
    scope: Annotated[str | None, typer.Option(help="Ask for these scopes only (space-separated).")] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Settings (default: the demo's).")] = None,
) -> None:
    """Print an access token for a client of the development issuer (the client-credentials grant)."""
    from demo.run import SETTINGS_FILE

    settings = load_settings_or_exit(config or SETTINGS_FILE)
    issuer = settings.dev_issuer
    if issuer is None or issuer.client(client) is None:
        raise fail(f"'{client}' is not a client of the development issuer")
    state = DevIssuerState.load_or_create(issuer)
    data = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
    try:
        response = httpx.post(f"{issuer.issuer}/oauth/token", data=data, auth=(client, state.client_secrets[client]))
    except httpx.TransportError:
        raise fail(f"the development issuer at {issuer.issuer} is not answering: start it with `make demo`") from None
    if response.status_code != 200:
        raise fail(f"the development issuer refused: {response.json().get('error_description', response.status_code)}")
    console.print(response.json()["access_token"], highlight=False, soft_wrap=True)
