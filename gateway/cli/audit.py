"""``fedgate audit``: the disclosure log, for security and information governance teams.

``verify`` (the chain, the signed checkpoints and the index: exit 0, or 1 naming the first broken link),
``query`` (by person, client, organisation, purpose, agreement, outcome and time), ``export`` (JSON lines,
for a SIEM), ``purge`` (events before a date, up to a checkpoint) and ``public-key`` (what a verifier needs).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import orjson
import typer
from rich.table import Table as RichTable

from gateway.audit.chain import Verdict
from gateway.audit.keys import load_public_key, load_signer, public_pem
from gateway.audit.setup import audit_store
from gateway.audit.store import AuditStore, Filter
from gateway.audit.verification import read_checkpoint_file, verify_store
from gateway.audit.writer import parse_time
from gateway.cli.common import ConfigOption, JsonOption, app, console, fail, load_settings_or_exit
from gateway.errors import AuditUnavailableError, ConfigError
from gateway.settings import Settings

audit_app = typer.Typer(no_args_is_help=True, help="The audit of every disclosure: verify, query, export, purge.")
app.add_typer(audit_app, name="audit")

#: ``verify``'s exit code when the store does not verify (2 stays for operator errors).
BROKEN = 1
T = TypeVar("T")


def _store_settings(config: Path | None) -> Settings:
    settings = load_settings_or_exit(config)
    if settings.audit.store is None:
        raise fail("these settings name no audit store (audit.store)")
    return settings


@asynccontextmanager
async def _opened(settings: Settings) -> AsyncIterator[AuditStore]:
    store = audit_store(settings)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def _run(settings: Settings, work: Callable[[AuditStore], Awaitable[T]]) -> T:
    """``work`` on the settings' store; one line and exit 2 if the store cannot be reached."""

    async def run() -> T:
        async with _opened(settings) as store:
            return await work(store)

    try:
        return asyncio.run(run())
    except AuditUnavailableError as error:
        cause = f" ({type(error.__cause__).__name__}: {error.__cause__})" if error.__cause__ else ""
        raise fail(f"{error.message}{cause}") from None


def _time(value: str | None, option: str) -> str | None:
    """An ISO 8601 date or time (UTC unless it says otherwise), as the audit writes times."""
    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError:
        example = "e.g. 2026-11-01 or 2026-11-01T09:30"
        raise fail(f"{option}: '{value}' is not an ISO 8601 date or time ({example})") from None


FromOption = Annotated[int | None, typer.Option("--from", min=1, help="First event (seq) to include.")]
ToOption = Annotated[int | None, typer.Option("--to", min=1, help="Last event (seq) to include.")]


@audit_app.command("verify")
def verify(
    config: ConfigOption = None,
    public_key: Annotated[
        Path | None, typer.Option(help="PEM public key (default: the configured signing key's).")
    ] = None,
    checkpoints: Annotated[
        Path | None, typer.Option(help="Checkpoints kept outside the store (default: the checkpoint sink's file).")
    ] = None,
    start: FromOption = None,
    end: ToOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check the chain, the signed checkpoints and the index; exit 1 at the first broken link, naming it."""
    settings = _store_settings(config)
    try:
        if public_key is not None:
            key = load_public_key(public_key)
        else:
            key = load_signer(settings.audit.signing_key_path, settings.audit.signing_key_env).public_key
        sink = settings.audit.checkpoint_sink
        outside = checkpoints or (
            sink.path if sink is not None and sink.path is not None and sink.path.exists() else None
        )
        external = read_checkpoint_file(outside) if outside is not None else []
    except ConfigError as error:
        raise fail(str(error)) from None
    verdict: Verdict = _run(settings, lambda store: verify_store(store, key, start=start, end=end, external=external))
    if as_json:
        console.print_json(data={"ok": verdict.ok, "events": verdict.events, "checkpoints": verdict.checkpoints,
                                 "last_event": verdict.head, "problem": verdict.problem, "seq": verdict.seq,
                                 "event_id": verdict.event_id})  # fmt: skip
    elif verdict.ok:
        console.print(f"verified: {verdict.events} events, {verdict.checkpoints} signed checkpoints, "
                      f"the last event {verdict.head}", highlight=False, soft_wrap=True)  # fmt: skip
    else:
        where = f"event {verdict.seq}" + (f" ({verdict.event_id})" if verdict.event_id else "")
        console.print(f"[bold red]broken[/] at {where}: {verdict.problem}; {verdict.events} events before it "
                      "verified", highlight=False, soft_wrap=True)  # fmt: skip
    if not verdict.ok:
        raise typer.Exit(BROKEN)


@audit_app.command("query")
def query(
    config: ConfigOption = None,
    subject: Annotated[str | None, typer.Option(help="A person's identifier (an NHS number, NINO...).")] = None,
    client: Annotated[str | None, typer.Option(help="The client id that asked.")] = None,
    organisation: Annotated[str | None, typer.Option(help="The organisation that asked.")] = None,
    purpose: Annotated[str | None, typer.Option(help="The purpose given.")] = None,
    agreement: Annotated[str | None, typer.Option(help="An agreement's id.")] = None,
    outcome: Annotated[str | None, typer.Option(help="ok, partial, refused or failed.")] = None,
    since: Annotated[str | None, typer.Option(help="From this date or time (ISO 8601, UTC).")] = None,
    until: Annotated[str | None, typer.Option(help="Before this date or time (ISO 8601, UTC).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Most events shown, newest first.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """Who saw what, and why: the newest events matching every option given."""
    settings = _store_settings(config)
    where = Filter(subject, client, organisation, purpose, agreement, outcome,
                   _time(since, "--since"), _time(until, "--until"))  # fmt: skip
    found = _run(settings, lambda store: store.query(where, limit))
    events = [{"seq": stored.seq, **orjson.loads(stored.body)} for stored in found]
    if as_json:
        sys.stdout.write(orjson.dumps(events, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    table = RichTable(title=f"Audit events ({len(events)}, newest first)")
    for column in ("seq", "time", "who", "purpose", "agreements", "outcome", "disclosed", "people"):
        table.add_column(column, overflow="fold")
    for event in events:
        table.add_row(*_row(event))
    console.print(table)


def _row(event: dict[str, Any]) -> list[str]:
    principal = event["principal"]
    purpose = event["purpose"] or {}
    disclosed = [
        f"{item['table']} ({item['rows']}): "
        + ", ".join(f"{name}" + (f" [{mask}]" if mask else "") for name, mask in item["columns"].items())
        for item in event["disclosed"]
    ]
    people = sum(len(values) for values in event["subjects"].values())
    bulk = event["bulk"]
    return [
        str(event["seq"]),
        event["time"],
        " / ".join(filter(None, [principal["client_id"], principal["subject"], principal["organisation"]])),
        " — ".join(filter(None, [purpose.get("name"), purpose.get("justification")])),
        ", ".join(f"{a['id']}@{a['version']}" for a in event["agreements"]),
        event["outcome"]["status"] + (f" {event['outcome']['code']}" if event["outcome"]["code"] else ""),
        "\n".join(disclosed),
        f"bulk: {bulk['count']}" if bulk else str(people),
    ]


@audit_app.command("export")
def export(
    config: ConfigOption = None,
    start: FromOption = None,
    end: ToOption = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")] = None,
) -> None:
    """Every event as one JSON line (seq, prev_hash, hash, event), in order: for a SIEM."""
    settings = _store_settings(config)

    async def write(store: AuditStore) -> int:
        count = 0
        handle = output.open("wb") if output is not None else sys.stdout.buffer
        try:
            async for stored in store.events(start, end):
                line = {"seq": stored.seq, "prev_hash": stored.prev_hash, "hash": stored.hash,
                        "event": orjson.Fragment(stored.body)}  # fmt: skip
                handle.write(orjson.dumps(line) + b"\n")
                count += 1
        finally:
            if output is not None:
                handle.close()
        return count

    try:
        written = _run(settings, write)
    except OSError as error:
        raise fail(f"cannot write {output}: {error.strerror}") from None
    if output is not None:
        console.print(f"exported {written} events to {output}", highlight=False)


@audit_app.command("purge")
def purge(
    before: Annotated[str, typer.Option(help="Remove events before this date (ISO 8601), up to a checkpoint.")],
    config: ConfigOption = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do it (without it, nothing is removed).")] = False,
) -> None:
    """Remove old events, up to the last checkpoint signed before ``--before``; the chain still verifies
    from that checkpoint."""
    settings = _store_settings(config)
    cutoff = _time(before, "--before")
    assert cutoff is not None
    if not yes:
        raise fail("purging removes events for good: add --yes to do it")
    anchor = _run(settings, lambda store: store.purge(cutoff))
    if anchor is None:
        console.print(f"nothing to purge: no checkpoint was signed before {cutoff} after the last purge")
    else:
        console.print(f"purged every event up to {anchor.seq}; the chain now starts from that checkpoint",
                      highlight=False)  # fmt: skip


@audit_app.command("public-key")
def public_key(config: ConfigOption = None) -> None:
    """The PEM public key of the configured signing key: all anyone needs to verify the store."""
    settings = load_settings_or_exit(config)
    try:
        signer = load_signer(settings.audit.signing_key_path, settings.audit.signing_key_env)
    except ConfigError as error:
        raise fail(str(error)) from None
    sys.stdout.write(public_pem(signer.public_key).decode())
