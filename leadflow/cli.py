"""The `leadflow` command line (entrypoint): thin commands over the services and plumbing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from leadflow.shadow import shadow_app
from leadflow.stack import SERVICE_PORTS, read_stack_file, run_stack
from shared.logs import configure_logging
from shared.settings import Settings

app = typer.Typer(
    help="leadflow: one shared, executable definition of a lead.", no_args_is_help=True
)
definitions_app = typer.Typer(help="Check and render lead definitions.", no_args_is_help=True)
app.add_typer(definitions_app, name="definitions")
sources_app = typer.Typer(help="Check declared webhook sources.", no_args_is_help=True)
app.add_typer(sources_app, name="sources")
app.add_typer(shadow_app, name="shadow")
SCHEMA_DIR = Path("schemas")
DefinitionsFile = Annotated[Path, typer.Argument(help="a lead-definitions YAML file")]


@contextmanager
def definitions_problems_reported() -> Iterator[None]:
    """A broken definitions (or sources) file ends the command with its problems listed,
    never a traceback."""
    from services.ingest.sources import SourcesError
    from shared.definitions import DefinitionsError

    try:
        yield
    except (DefinitionsError, SourcesError) as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(1) from None


def _settings() -> Settings:
    """Settings from the environment, else the addresses of a running `leadflow up`."""
    settings = Settings()
    running = read_stack_file(settings.state_dir)
    updates: dict[str, Any] = {}
    if not settings.kafka_bootstrap_servers and running.get("kafka_bootstrap_servers"):
        updates["kafka_bootstrap_servers"] = running["kafka_bootstrap_servers"]
    if not settings.database_url and running.get("database_url"):
        updates["database_url"] = running["database_url"]
    return settings.model_copy(update=updates)


@app.command()
def up() -> None:
    """Run the whole stack; without DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS, embedded ones."""
    with definitions_problems_reported():
        status = run_stack(Settings(), typer.echo)
    raise typer.Exit(status)


@app.command()
def migrate() -> None:
    """Apply every service's database migrations (DATABASE_URL)."""
    from shared.db import migrate as apply_migrations

    apply_migrations(_settings().require_database())
    typer.echo("migrations applied")


@app.command()
def topics() -> None:
    """Create or repair every leadflow topic (KAFKA_BOOTSTRAP_SERVERS): missing topics are
    created with LEADFLOW_TOPIC_PARTITIONS partitions and their log markers."""
    from aiokafka.errors import KafkaError

    from shared.kafka import ensure_topics

    settings = _settings()
    try:
        report = asyncio.run(ensure_topics(settings))
    except (KafkaError, OSError) as error:
        typer.echo(f"the broker at {settings.require_broker()} did not answer: {error}", err=True)
        raise typer.Exit(1) from error
    if report.created:
        typer.echo(f"created: {', '.join(report.created)}")
    for name, count in report.grown.items():
        typer.echo(f"{name}: grown from {count} to {settings.topic_partitions} partitions")
    actions = report.operator_actions(settings.topic_partitions)
    for action in actions:
        typer.echo(f"needs an operator: {action}", err=True)
    if actions:
        raise typer.Exit(1)
    if not (report.created or report.grown):
        typer.echo("every topic exists with its partitions")


@app.command()
def serve(
    service: Annotated[str, typer.Argument(help=f"one of: {', '.join(SERVICE_PORTS)}")],
) -> None:
    """Run one service's HTTP server (what `up` and docker compose start)."""
    import gc
    import importlib

    from leadflow.server import run_until_stopped

    if service not in SERVICE_PORTS:
        raise typer.BadParameter(f"unknown service {service!r}", param_hint="SERVICE")
    settings = _settings()
    configure_logging(settings.log_level)
    bootstrap = importlib.import_module(f"services.{service}.bootstrap")
    with definitions_problems_reported():
        application = bootstrap.create_app(settings)
    # Requests allocate many short-lived objects: collect young garbage less often, and
    # never rescan what start-up built.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    run_until_stopped(application, settings.http_host, getattr(settings, SERVICE_PORTS[service]))


@app.command()
def mailbox(
    smtp_port: Annotated[int, typer.Option(help="where it receives mail")] = 1025,
    http_port: Annotated[int, typer.Option(help="where its page lists the mail")] = 8025,
) -> None:
    """Run a local mailbox (what `up` starts without LEADFLOW_SMTP_URL): an SMTP server on
    127.0.0.1 that keeps the last messages, listed at http://127.0.0.1:HTTP_PORT."""
    from leadflow.mailbox import serve_mailbox

    configure_logging(Settings().log_level)
    asyncio.run(serve_mailbox(smtp_port, http_port))


@app.command()
def tail(
    topic: Annotated[str, typer.Argument(help="e.g. lead.interactions")],
    follow: Annotated[bool, typer.Option(help="keep waiting for new records")] = True,
    limit: Annotated[int, typer.Option(help="stop after this many records (0 = no limit)")] = 0,
) -> None:
    """Print a topic's records from the beginning, one JSON object per line."""
    from leadflow.tail import print_records

    asyncio.run(print_records(_settings(), topic, follow=follow, limit=limit, echo=typer.echo))


@app.command()
def schema(
    check: Annotated[bool, typer.Option(help="fail if the committed files are stale")] = False,
) -> None:
    """Write the JSON Schemas of the events and the AsyncAPI document into schemas/."""
    from shared.schemas import rendered_schema_files

    stale = []
    for name, text in rendered_schema_files().items():
        path = SCHEMA_DIR / name
        if path.exists() and path.read_text() == text:
            continue
        stale.append(name)
        if not check:
            SCHEMA_DIR.mkdir(exist_ok=True)
            path.write_text(text)
    if check and stale:
        typer.echo(f"stale: {', '.join(stale)} (run `leadflow schema`)", err=True)
        raise typer.Exit(1)
    typer.echo(json.dumps({"written" if not check else "checked": stale or "up to date"}))


@definitions_app.command("check")
def definitions_check(file: DefinitionsFile = Path("lead-definitions.yaml")) -> None:
    """Validate a definitions file; print every problem with its place, exit 1 if any."""
    from shared.definitions import load_definitions

    with definitions_problems_reported():
        loaded = load_definitions(file)
    typer.echo(f"{file}: valid, version {loaded.version}")


@definitions_app.command("test")
def definitions_test(
    file: DefinitionsFile = Path("lead-definitions.yaml"),
    cases: Annotated[
        Path | None,
        typer.Option(help="a folder of golden case files (default: golden/<FILE's name>)"),
    ] = None,
) -> None:
    """Run the golden cases against a definitions file; print pass/fail, exit 1 on a failure."""
    from rich.console import Console

    from leadflow.golden import GoldenCaseError, run_cases, summary, table
    from shared.definitions import load_definitions

    folder = cases if cases is not None else Path("golden") / file.stem
    files = sorted(folder.glob("*.yaml")) if folder.is_dir() else []
    if not files:
        typer.echo(f"{folder}: no golden case files (*.yaml)", err=True)
        raise typer.Exit(1)
    with definitions_problems_reported():
        try:
            checks = run_cases(load_definitions(file).definitions, files)
        except GoldenCaseError as error:
            typer.echo(str(error), err=True)
            raise typer.Exit(1) from None
    Console().print(table(checks))
    for line in summary(checks):
        typer.echo(line)
    if not all(check.passed for check in checks):
        raise typer.Exit(1)


@sources_app.command("check")
def sources_check(
    file: Annotated[Path, typer.Argument(help="a sources YAML file (LEADFLOW_SOURCES)")],
) -> None:
    """Validate a sources file; print every problem with its place, exit 1 if any."""
    from services.ingest.sources import load_sources

    with definitions_problems_reported():
        sources = load_sources(file)
    secrets = Settings().webhook_secrets  # only to say which sources still need a secret
    for source in sources:
        secret = "" if source.name in secrets else " (no secret in LEADFLOW_WEBHOOK_SECRETS yet)"
        typer.echo(f"{file}: source {source.name!r}: valid, /v1/webhooks/{source.name}{secret}")


@definitions_app.command("render")
def definitions_render(
    file: DefinitionsFile = Path("lead-definitions.yaml"),
    output: Annotated[
        Path | None, typer.Option(help="write here (.md or .html); default: Markdown to stdout")
    ] = None,
) -> None:
    """Write the definitions as a readable document for marketing and sales."""
    from shared.definitions import load_definitions
    from shared.definitions.render import document, to_html, to_markdown

    with definitions_problems_reported():
        blocks = document(load_definitions(file))
    if output is None:
        typer.echo(to_markdown(blocks))
        return
    output.write_text(
        to_html(blocks) if output.suffix in (".html", ".htm") else to_markdown(blocks)
    )
    typer.echo(f"wrote {output}")


@app.command()
def rescore() -> None:
    """Score every lead again under the configured definitions; emit what changed."""
    from leadflow.replay import rescore as run

    with definitions_problems_reported():
        asyncio.run(run(_settings()))


@app.command()
def whatif(
    candidate: Annotated[Path, typer.Argument(help="candidate lead-definitions YAML")],
) -> None:
    """Replay stored history against candidate definitions; compare with the active ones."""
    from leadflow.replay import whatif as run

    with definitions_problems_reported():
        asyncio.run(run(_settings(), candidate))


@app.command()
def demo(
    minutes: Annotated[float, typer.Option(min=0.1, max=60, help="how long to run")] = 1.0,
    seed: Annotated[int, typer.Option(help="the same seed gives the same people")] = 7,
) -> None:
    """Send a realistic stream over all four channels to a running `leadflow up`; act as reps."""
    from leadflow.demo import DemoError, run_demo
    from leadflow.stack import CREDENTIALS_FILE

    settings = Settings()
    running = read_stack_file(settings.state_dir)
    credentials_file = settings.state_dir / CREDENTIALS_FILE
    if not running or not credentials_file.exists():
        typer.echo("no running stack found: start one with `make run` (leadflow up)", err=True)
        raise typer.Exit(1)
    credentials = json.loads(credentials_file.read_text())
    try:
        asyncio.run(
            run_demo(
                running["ingest_url"],
                running["router_url"],
                next(iter(credentials["api_keys"])),
                credentials["admin_key"],
                minutes=minutes,
                seed=seed,
                echo=typer.echo,
                scoring_url=running.get("scoring_url"),
                mailbox_url=credentials.get("mailbox"),
            )
        )
    except DemoError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(1) from None
