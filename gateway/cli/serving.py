"""Commands that run fedgate: ``serve``, ``demo`` and ``token``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.panel import Panel

from gateway.auth.dev_issuer import DevIssuerState, refuse_outside_demo
from gateway.cli.common import ConfigOption, app, console, fail, load_settings_or_exit
from gateway.errors import ConfigError
from gateway.logs import configure_logging
from gateway.settings import Settings
from schema.catalog import load_catalog


def _run(settings: Settings, host: str | None, port: int | None, *, demo: bool, config: Path) -> None:
    from gateway.serving import serve

    configure_logging(settings.logging)
    dev_issuer = None
    if settings.dev_issuer is not None and (demo or settings.dev_issuer.enabled):
        try:
            dev_issuer = refuse_outside_demo(settings.dev_issuer, demo=demo, file=str(config))
        except ConfigError as error:
            raise fail(str(error)) from None
    try:
        asyncio.run(
            serve(settings, host or settings.server.host, settings.server.port if port is None else port, dev_issuer)
        )
    except ConfigError as error:
        raise fail(str(error)) from None


@app.command()
def serve(
    config: ConfigOption = Path("fedgate.yaml"),
    host: Annotated[str | None, typer.Option(help="Override server.host.")] = None,
    port: Annotated[int | None, typer.Option(help="Override server.port.")] = None,
) -> None:
    """Serve the gateway described by a settings file."""
    _run(load_settings_or_exit(config), host, port, demo=False, config=config)


@app.command()
def demo(
    port: Annotated[int | None, typer.Option(help="Port to serve the gateway on (default 8000).")] = None,
    regenerate: Annotated[bool, typer.Option(help="Rebuild the demo departments' data.")] = False,
) -> None:
    """Build the demo departments if needed and serve them, with the dev issuer and example queries."""
    from demo.run import SETTINGS_FILE, ensure_data, examples

    settings = load_settings_or_exit(SETTINGS_FILE)
    catalog = load_catalog(settings.catalog_path)
    written = ensure_data(catalog, regenerate=regenerate)
    if written:
        console.print(f"Generated {len(written)} demo department databases in {written[0].parent}")
    assert settings.dev_issuer is not None
    DevIssuerState.load_or_create(settings.dev_issuer)
    actual_port = settings.server.port if port is None else port
    url = f"http://{settings.server.host}:{actual_port}/graphql"
    clients = "\n".join(f"  {client.id:<18} {client.name}" for client in settings.dev_issuer.clients)
    console.print(
        Panel.fit(
            f"GraphiQL: [bold]{url}[/]  (open it in a browser)\n"
            f"Token:    [bold]fedgate token --client mash-case-app[/]  then, in GraphiQL's Headers tab:\n"
            '          {"Authorization": "Bearer <token>"}\n'
            f"Clients:\n{clients}"
        )
    )
    for example in examples(catalog):
        console.print(f"\n[bold]{example.title}[/] (client: {example.client})")
        console.print(example.query, highlight=False, markup=False, soft_wrap=True)
    console.print()
    _run(settings, None, actual_port, demo=True, config=SETTINGS_FILE)


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
