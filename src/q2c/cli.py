"""The ``q2c`` command line (Typer + Rich)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from q2c.errors import ConfigError, Q2CError

app = typer.Typer(
    name="q2c",
    help="Quote-to-cash integration hub for professional-services firms.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The hub's own database.", no_args_is_help=True)
contracts_app = typer.Typer(
    help="Published canonical contracts (JSON Schema).", no_args_is_help=True
)
exceptions_app = typer.Typer(help="The exception queue.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(contracts_app, name="contracts")
app.add_typer(exceptions_app, name="exceptions")
mappings_app = typer.Typer(
    help="Value mappings operators added at run time (kept in the hub's store).",
    no_args_is_help=True,
)
app.add_typer(mappings_app, name="mappings")

console = Console()
err_console = Console(stderr=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="q2c.yaml (default: ./q2c.yaml, else the demo config)"),
]


def _config(path: Path | None) -> Any:
    from q2c.config import default_demo_config, load_config

    try:
        if path is not None:
            return load_config(path)
        if Path("q2c.yaml").exists():
            return load_config(Path("q2c.yaml"))
        return default_demo_config()
    except Q2CError as error:
        _fail(error)


def _fail(error: Q2CError) -> NoReturn:
    err_console.print(f"[bold red]{error.message}[/]")
    if error.suggested_fix:
        err_console.print(f"[yellow]fix:[/] {error.suggested_fix}")
    if error.detail:
        err_console.print(f"[dim]{error.detail}[/]")
    raise typer.Exit(2)


@app.command()
def demo(
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON")] = False,
    only: Annotated[
        str | None,
        typer.Option(help="Run one part only: 'opportunity-to-project'"),
    ] = None,
    opportunities: Annotated[
        int, typer.Option(help="Deals to generate (--only opportunity-to-project)")
    ] = 36,
    time_entries: Annotated[int, typer.Option(help="Time entries logged in Kantata")] = 10_000,
    workdir: Annotated[Path, typer.Option(help="Where the demo database goes")] = Path(".q2c"),
    seed: Annotated[int, typer.Option(help="Random seed of the generated data")] = 7,
    erp: Annotated[
        str,
        typer.Option(help="The ERP: 'netsuite' (emulator) or 'tryton' (a real Tryton server "
                          "started from the cached database, US01 only)"),
    ] = "netsuite",
) -> None:
    """Run the whole quote-to-cash on SQLite with the bundled vendor sandboxes (Salesforce,
    NetSuite or Tryton, Kantata, Stripe)."""
    from q2c.observability import configure_logging

    configure_logging("ERROR")
    if only not in (None, "opportunity-to-project"):
        _fail(ConfigError(f"--only: unknown part {only!r}",
                          suggested_fix="Use --only opportunity-to-project, or leave it out."))
        return
    if erp not in ("netsuite", "tryton") or (only and erp != "netsuite"):
        _fail(ConfigError(f"--erp: no demo for {erp!r}" + (f" with --only {only}" if only else ""),
                          suggested_fix="Use --erp netsuite or --erp tryton (whole demo only)."))
        return
    try:
        if only == "opportunity-to-project":
            from q2c.demo_opportunities import run_demo as run_opportunities

            summary = run_opportunities(
                workdir=workdir, opportunities=opportunities, seed=seed,
                console=None if as_json else console,
            )
        else:
            from q2c.demo import run_demo

            summary = run_demo(
                workdir=workdir, seed=seed, time_entries=time_entries,
                console=None if as_json else console, erp=erp,
            )
    except Q2CError as error:
        _fail(error)
        return
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
    if not summary["ok"]:
        raise typer.Exit(1)


@app.command()
def serve(
    config: ConfigOption = None,
    host: str = "127.0.0.1",
    port: int = 8080,
) -> None:
    """Serve the HTTP API (and later the console). Tokens: POST /v1/token for the clients
    under ``api.clients`` in q2c.yaml; ``api: {auth: disabled}`` serves loopback only."""
    import ipaddress

    import uvicorn

    from q2c.api.app import create_app
    from q2c.bootstrap import bootstrap
    from q2c.observability import configure_logging, configure_tracing

    try:
        settings = _config(config)
    except Q2CError as error:
        _fail(error)
        return
    api = settings.api
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if api.auth == "disabled" and not loopback:
        _fail(
            ConfigError(
                f"q2c.yaml: api.auth: 'disabled' serves 127.0.0.1 only, not {host}",
                suggested_fix="Configure api.clients (or api.external_issuer) and remove "
                "'auth: disabled' before serving on a network interface.",
            )
        )
        return
    if api.auth == "enabled" and not api.clients and api.external_issuer is None:
        err_console.print(
            "[yellow]No API clients in q2c.yaml (api.clients): every /v1 call will be refused "
            "with 401.[/yellow]"
        )
    configure_logging("INFO")
    configure_tracing(settings.observability.tracing)
    try:
        hub = bootstrap(settings)
    except Q2CError as error:
        _fail(error)
        return
    try:
        uvicorn.run(create_app(hub), host=host, port=port, log_level="warning")
    finally:
        hub.close()


@app.command()
def worker(
    config: ConfigOption = None,
    worker_id: Annotated[str | None, typer.Option("--id", help="Stable worker id")] = None,
    once: Annotated[bool, typer.Option(help="Work until idle, then exit")] = False,
    poll_seconds: float = 0.5,
    lease_seconds: float = 60.0,
    poll_crm: Annotated[bool, typer.Option(help="Poll the CRM for closed-won deals")] = True,
) -> None:
    """Poll the CRM, claim due transactions and run them; publish the outbox."""
    from datetime import timedelta

    from q2c.bootstrap import bootstrap
    from q2c.observability import configure_logging, configure_tracing
    from q2c.runtime.worker import run_worker

    configure_logging("INFO")
    try:
        hub = bootstrap(
            _config(config), worker_id=worker_id, lease=timedelta(seconds=lease_seconds)
        )
    except Q2CError as error:
        _fail(error)
        return
    configure_tracing(hub.config.observability.tracing)
    run_worker(hub, once=once, poll_seconds=poll_seconds, poll_crm=poll_crm)


@app.command()
def replay(
    transaction_id: Annotated[str | None, typer.Argument(help="Transaction to replay")] = None,
    by: Annotated[str, typer.Option(help="Who is replaying (kept in the audit trail)")] = "cli",
    reason: str | None = None,
    dry_run: Annotated[bool, typer.Option(help="Show what would be sent; change nothing")] = False,
    flow: str | None = None,
    step: str | None = None,
    message_contains: str | None = None,
    config: ConfigOption = None,
) -> None:
    """Replay one parked transaction, or every open exception matching the filters."""
    from q2c.bootstrap import bootstrap
    from q2c.runtime.exception_queue import ExceptionFilter

    hub = bootstrap(_config(config))
    if transaction_id:
        outcomes = [hub.engine.replay(transaction_id, by=by, reason=reason, dry_run=dry_run)]
    else:
        where = ExceptionFilter(flow=flow, step=step, message_contains=message_contains)
        outcomes = hub.engine.replay_many(where, by=by, reason=reason, dry_run=dry_run)
    table = Table("transaction", "accepted", "from step", "message", "writes")
    for outcome in outcomes:
        table.add_row(
            outcome.transaction_id,
            str(outcome.accepted),
            outcome.from_step or "",
            outcome.message,
            str(len(outcome.intended_writes)),
        )
    console.print(table)


@app.command()
def reconcile(
    config: ConfigOption = None,
    legal_entity: Annotated[
        list[str] | None, typer.Option("--legal-entity", help="Only these (repeatable)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """ERP migration parallel run: compare both ERPs' receivables per customer, read back from
    each ERP. Exits 1 when any difference is found."""
    from q2c.bootstrap import bootstrap
    from q2c.flows.erp_reconciliation import reconcile_erp_migration

    try:
        hub = bootstrap(_config(config))
    except Q2CError as error:
        _fail(error)
        return
    try:
        reports = reconcile_erp_migration(hub, legal_entities=legal_entity or None)
    except Q2CError as error:
        _fail(error)
        return
    finally:
        hub.close()
    if as_json:
        typer.echo(json.dumps([r.as_dict() for r in reports], indent=2, default=str))
    else:
        for report in reports:
            for line in report.lines():
                console.print(line)
    raise typer.Exit(0 if all(r.matched for r in reports) else 1)


@exceptions_app.command("list")
def exceptions_list(config: ConfigOption = None, status: str = "open") -> None:
    """List parked transactions with their business message and suggested fix."""
    from q2c.bootstrap import bootstrap
    from q2c.runtime.exception_queue import ExceptionFilter

    hub = bootstrap(_config(config))
    table = Table("id", "flow", "business key", "step", "message", "suggested fix")
    for item in hub.engine.exception_queue.list(ExceptionFilter(status=status)):
        table.add_row(
            str(item.id), item.flow, item.business_key, item.step, item.message, item.suggested_fix
        )
    console.print(table)


_STANDING_LABELS = {
    "in_q2c_yaml": "[green]has it[/]",
    "not_in_q2c_yaml": "[yellow]not yet: copy it[/]",
    "overridden_by_q2c_yaml": "[dim]changed since; q2c.yaml wins[/]",
}


def _mapping_label(dimension: str, value: str, legal_entity: str, system: str) -> str:
    return f"{dimension} {value} ({legal_entity}) → {system}"


@mappings_app.command("list")
def mappings_list(
    config: ConfigOption = None,
    history: Annotated[bool, typer.Option(help="Also print every change, oldest first")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Operator mappings with who added them and why, marking those q2c.yaml does not have
    yet (copy them into q2c.yaml's mappings so git has them too)."""
    from dataclasses import asdict

    from q2c.bootstrap import utcnow
    from q2c.mapping.value_maps import ANY_ENTITY, ValueMaps, yaml_key
    from q2c.runtime.operator_mappings import LiveValueMaps, OperatorMappings
    from q2c.store.db import create_store_engine, upgrade

    settings = _config(config)
    engine = create_store_engine(settings.store.url)
    try:
        upgrade(engine)
        store = OperatorMappings(engine, now=utcnow)
        standings = LiveValueMaps(ValueMaps.from_config(settings), store).standings()
        changes = store.history() if history else []
    finally:
        engine.dispose()
    rows = [
        {
            **asdict(mapping),
            "added_at": mapping.added_at.isoformat(),
            "standing": standing,
            "q2c_yaml_key": yaml_key(
                "mappings",
                mapping.dimension,
                mapping.value,
                *([] if mapping.legal_entity == ANY_ENTITY else [mapping.legal_entity]),
                mapping.system,
            ),
        }
        for mapping, standing in standings
    ]
    if as_json:
        document: dict[str, Any] = {"mappings": rows}
        if history:
            document["history"] = [
                {**asdict(change), "added_at": change.added_at.isoformat()} for change in changes
            ]
        typer.echo(json.dumps(document, indent=2))
        return
    table = Table("mapping", "id", "added by", "why", "on", "q2c.yaml", title="Operator mappings")
    for row in rows:
        table.add_row(
            _mapping_label(row["dimension"], row["value"], row["legal_entity"], row["system"]),
            row["external_id"], row["added_by"], row["reason"] or "", row["added_at"][:10],
            _STANDING_LABELS[row["standing"]],
        )
    console.print(table if rows else "No operator mappings.")
    to_copy = [row for row in rows if row["standing"] == "not_in_q2c_yaml"]
    if to_copy:
        console.print("Not in q2c.yaml yet; copy these into it:")
        for row in to_copy:
            console.print(f'  {row["q2c_yaml_key"]}: "{row["external_id"]}"',
                          soft_wrap=True, markup=False, highlight=False)
    if history:
        log = Table("mapping", "old id", "new id", "by", "why", "at", title="Changes")
        for change in changes:
            log.add_row(
                _mapping_label(change.dimension, change.value, change.legal_entity,
                               change.system),
                change.old_external_id or "", change.new_external_id, change.added_by,
                change.reason or "", change.added_at.strftime("%Y-%m-%d %H:%M"),
            )
        console.print(log)


@db_app.command("upgrade")
def db_upgrade(config: ConfigOption = None, revision: str = "head") -> None:
    """Apply the Alembic migrations to the configured store."""
    from q2c.store.db import create_store_engine, upgrade

    settings = _config(config)
    engine = create_store_engine(settings.store.url)
    upgrade(engine, revision)
    console.print(f"store at {engine.url.render_as_string(hide_password=True)} is at {revision}")


@contracts_app.command("generate")
def contracts_generate(
    root: Annotated[Path, typer.Option(help="Contracts folder")] = Path("contracts"),
) -> None:
    """Write the JSON Schemas of the canonical model into contracts/v<N>/."""
    from q2c.canonical.schemas import write_contracts

    try:
        written = write_contracts(root)
    except Q2CError as error:
        _fail(error)
        return
    console.print(f"wrote {len(written)} schema files under {root}")


@contracts_app.command("check")
def contracts_check(
    root: Annotated[Path, typer.Option(help="Contracts folder")] = Path("contracts"),
) -> None:
    """Refuse a breaking change to the published contracts without a new version."""
    from q2c.canonical.schemas import contracts_check_exit_code

    code, report = contracts_check_exit_code(root)
    console.print(report)
    raise typer.Exit(code)


@app.command()
def sandbox(
    system: Annotated[
        str,
        typer.Argument(help="'vendors' (Salesforce and NetSuite emulators) or 'tryton' (a real "
                            "Tryton server from the cached database)"),
    ] = "vendors",
    host: str = "127.0.0.1",
    salesforce_port: int = 8101,
    netsuite_port: int = 8102,
    port: Annotated[int, typer.Option(help="Tryton's port (0: a free one)")] = 0,
    credentials_out: Annotated[
        Path | None,
        typer.Option(help="Where to write credentials and ids "
                          "(default .q2c/sandbox.json, .q2c/tryton.json for Tryton)"),
    ] = None,
    seed_deals: Annotated[int, typer.Option(help="Closed-won deals to seed in Salesforce")] = 0,
) -> None:
    """Serve sandboxes on loopback until stopped: the Salesforce and NetSuite emulators, or
    (``q2c sandbox tryton``) a managed Tryton server."""
    if system == "tryton":
        _serve_tryton(port, credentials_out or Path(".q2c/tryton.json"))
        return
    if system != "vendors":
        _fail(ConfigError(f"q2c sandbox: unknown sandbox {system!r}",
                          suggested_fix="Use 'q2c sandbox' or 'q2c sandbox tryton'."))
    from q2c.sandbox_server import serve_sandboxes

    credentials_out = credentials_out or Path(".q2c/sandbox.json")
    console.print(
        f"Salesforce on http://{host}:{salesforce_port}, NetSuite on "
        f"http://{host}:{netsuite_port}; credentials in {credentials_out}"
    )
    serve_sandboxes(
        host=host,
        salesforce_port=salesforce_port,
        netsuite_port=netsuite_port,
        credentials_out=credentials_out,
        seed_deals=seed_deals,
    )


def _serve_tryton(port: int, credentials_out: Path) -> None:
    from q2c.sandbox_server import serve_tryton

    def announce(served: dict[str, Any]) -> None:
        console.print(
            f"Tryton on {served['base_url']} (JSON-RPC {served['rpc_url']}), database "
            f"{served['database']}, user {served['username']} password {served['password']}; "
            f"credentials and setup ids in {credentials_out}. Ctrl-C stops it.",
            soft_wrap=True,
        )

    console.print("Starting Tryton from the cached database (the first run builds it, ~1 min)")
    try:
        serve_tryton(port=port, credentials_out=credentials_out, announce=announce)
    except Q2CError as error:
        _fail(error)


@app.command()
def bench(
    events: Annotated[int, typer.Option(help="Events to ingest")] = 20_000,
    sagas: Annotated[int, typer.Option(help="Six-step sagas to run")] = 2_000,
    postgres: Annotated[str | None, typer.Option(help="PostgreSQL URL to measure too")] = None,
    cash: Annotated[
        bool,
        typer.Option(
            "--cash",
            help="Measure the delivery-to-cash money path instead: rating, batched intake, "
            "billing runs against the Stripe emulator, a month-end run",
        ),
    ] = False,
    entries: Annotated[int, typer.Option(help="--cash: approved time entries")] = 100_000,
    contracts: Annotated[int, typer.Option(help="--cash: contracts they bill under")] = 100,
    month_end_contracts: Annotated[
        int, typer.Option(help="--cash: contracts in the month-end invoice run")
    ] = 1_000,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Measure throughput next to baselines run in this process: ingest and sagas against a
    raw-SQLite insert, or (``--cash``) the delivery-to-cash path."""
    import tempfile

    from rich.progress import Progress

    from q2c.bench import run_benchmarks
    from q2c.bench_cash import CashBenchSizes, bench_cash
    from q2c.observability import configure_logging

    configure_logging("ERROR")
    started = time.perf_counter()
    with Progress(console=err_console, transient=True) as progress:
        task = progress.add_task("benchmarks", total=None)

        def report(name: str) -> None:
            progress.update(task, description=name)

        if cash:
            sizes = CashBenchSizes(
                entries=entries,
                contracts=contracts,
                month_end_contracts=month_end_contracts,
                rating_entries=entries,
            )
            with tempfile.TemporaryDirectory(prefix="q2c-bench-") as workdir:
                results = bench_cash(Path(workdir), sizes, progress=report)
        else:
            results = run_benchmarks(
                events=events, sagas=sagas, postgres_url=postgres, progress=report
            )
    if as_json:
        typer.echo(json.dumps([r.as_dict() for r in results], indent=2))
        return
    table = Table(
        "benchmark",
        "count",
        "seconds",
        "per second",
        "vs baseline",
        "p50 ms",
        "p95 ms",
        title=f"q2c bench ({time.perf_counter() - started:.1f} s)",
    )
    for r in results:
        table.add_row(
            r.name,
            str(r.count),
            f"{r.seconds:.2f}",
            f"{r.per_second:,.0f}",
            f"{r.ratio_to_baseline:.2f}x" if r.ratio_to_baseline else "",
            f"{r.p50_ms:.2f}" if r.p50_ms is not None else "",
            f"{r.p95_ms:.2f}" if r.p95_ms is not None else "",
        )
    console.print(table)


if __name__ == "__main__":
    app()
