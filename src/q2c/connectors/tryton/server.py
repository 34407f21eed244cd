"""A managed Tryton server on loopback: a real ERP for tests, the demo and benchmarks.

``TrytonServer`` gives a ready database and a running ``trytond`` on a free 127.0.0.1 port:

1. *Initialise once, then copy.* Creating a database and activating the modules with
   ``trytond-admin`` takes ~20-50 s (CPU bound), and the company setup over JSON-RPC
   (``provision.py``) a few more. Both are done once per cache key and the result is kept:
   SQLite as a file under the cache directory (a later start copies it in milliseconds),
   PostgreSQL as a template database (a later start runs ``CREATE DATABASE ... TEMPLATE``).
   The key hashes the installed ``trytond*`` distribution versions, the module list, the
   backend, the setup script's ``PROVISION_VERSION``, ``INIT_VERSION`` (servertools) and the
   year
   (fiscal years are created around it). ``trytond-admin`` is the only step not done over
   RPC: activating modules and creating the schema is not exposed over RPC in Tryton.
2. *Start* ``trytond -c <conf> -d <db>`` as a subprocess (``-d`` is required on 8.2.1, see
   TRYTON.md section 1), wait until it answers, and stop it by pid on ``stop()``, on leaving the
   ``with`` block, or at interpreter exit. A PostgreSQL database it created is dropped.

Cache: ``$Q2C_TRYTON_CACHE`` or ``$XDG_CACHE_HOME/q2c/tryton`` (``~/.cache/q2c/tryton``),
files ``<key>.sqlite`` and ``<key>.json`` (setup ids, admin password, versions, cold timings);
for PostgreSQL the template database ``q2c_tpl_<key hash>_<cache dir hash>`` in the cluster.
Builders serialise on ``<key>.lock`` so parallel test runs initialise only once. Templates of
older keys are not removed automatically (``DROP DATABASE`` them, ~15 MB each).
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from q2c.connectors.http import ExchangeRecorder, TokenBucket
from q2c.connectors.tryton.adapter import TrytonErp, connect_tryton
from q2c.connectors.tryton.provision import PROVISION_VERSION, TrytonSetup, provision
from q2c.connectors.tryton.psa import TrytonPsa
from q2c.connectors.tryton.rpc import CallStats, TrytonRpc, connect_rpc
from q2c.connectors.tryton.servertools import (
    INIT_VERSION,
    Backend,
    PostgresCluster,
    cache_dir,
    cache_key,
    free_port,
    locked,
    log_tail,
    relaxed_uri,
    sqlite_snapshot,
    terminate,
    tryton_versions,
)
from q2c.errors import FatalError

__all__ = [
    "DEFAULT_MODULES",
    "INIT_VERSION",
    "ServerTimings",
    "TrytonServer",
    "cache_dir",
    "cache_key",
]

DEFAULT_MODULES = (
    "party",
    "company",
    "currency",
    "account",
    "account_invoice",
    "product",
    "account_product",
    "project",
    "timesheet",
    "project_invoice",
    "sale",
)
DEFAULT_POSTGRES_URI = "postgresql://postgres@127.0.0.1:5432/"
ADMIN_LOGIN = "admin"
READY_TIMEOUT = 60.0


@dataclass
class ServerTimings:
    """Seconds spent getting the server ready (for BENCHMARKS.md)."""

    cache_hit: bool = False
    admin_s: float = 0.0  # trytond-admin: create schema, activate modules (cold only)
    provision_s: float = 0.0  # company, chart, fiscal years... over JSON-RPC (cold only)
    restore_s: float = 0.0  # copy the cached file / CREATE DATABASE ... TEMPLATE
    start_s: float = 0.0  # process start until the first answer (pool loaded)
    cold_init_s: float | None = None  # what the first init cost when the cache was built

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Cached:
    setup: TrytonSetup
    password: str
    meta: dict[str, Any] = field(default_factory=dict)


class TrytonServer:
    """A Tryton database and a ``trytond`` process serving it on 127.0.0.1.

    ``with TrytonServer() as server: erp = server.erp()`` - SQLite by default, on a free port
    unless ``port`` is given; with
    ``backend="postgresql"`` a database of its own (``q2c_<random>``) on ``postgres_uri``,
    dropped at stop. ``use_cache=False`` forces a fresh initialisation (and refreshes the
    cache). ``server.setup`` holds the ids ``provision`` created (company, accounts, taxes,
    products, payment method); ``server.timings`` and ``server.call_stats`` what it cost.
    The admin password is random per cache and kept in the cache metadata.
    """

    def __init__(
        self,
        *,
        backend: Backend = "sqlite",
        modules: Sequence[str] = DEFAULT_MODULES,
        workdir: Path | None = None,
        cache: Path | None = None,
        use_cache: bool = True,
        postgres_uri: str = DEFAULT_POSTGRES_URI,
        database: str | None = None,
        session_timeout: int = 300,
        today: dt.date | None = None,
        port: int = 0,
    ) -> None:
        self.backend: Backend = backend
        self.modules = tuple(modules)
        self.cache = cache or cache_dir()
        self.use_cache = use_cache
        self.postgres_uri = postgres_uri
        self.session_timeout = session_timeout
        self.today = today or dt.date.today()
        self.key = cache_key(backend, self.modules, self.today.year)
        suffix = secrets.token_hex(4)
        self.database = database or (f"q2c_{suffix}" if backend == "postgresql" else "q2c")
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="q2c-tryton-"))
        self.username = ADMIN_LOGIN
        self.password = ""
        self.port = 0
        self.requested_port = port  # 0: a free one (``q2c sandbox tryton --port`` sets it)
        self.timings = ServerTimings()
        self.call_stats = CallStats()
        self._setup: TrytonSetup | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._created_pg_database = False
        self.pg = PostgresCluster(postgres_uri)

    # --- public surface --------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def setup(self) -> TrytonSetup:
        if self._setup is None:
            raise FatalError("the Tryton server is not started", system="tryton")
        return self._setup

    @property
    def log_path(self) -> Path:
        return self.workdir / "trytond.log"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def client(self, timeout: float = 30.0) -> httpx.Client:
        return httpx.Client(timeout=timeout)

    def rpc(self, client: httpx.Client | None = None, *, password: str | None = None) -> TrytonRpc:
        """A JSON-RPC connection as the admin user (latencies go to ``call_stats``)."""
        return self._connect(client or self.client(), self.database, password)

    def _connect(
        self, client: httpx.Client, database: str, password: str | None = None
    ) -> TrytonRpc:
        return connect_rpc(
            client,
            base_url=self.base_url,
            database=database,
            username=self.username,
            password=self.password if password is None else password,
            stats=self.call_stats,
        )

    def erp(
        self,
        client: httpx.Client | None = None,
        *,
        recorder: ExchangeRecorder | None = None,
        bucket: TokenBucket | None = None,
    ) -> TrytonErp:
        """The adapter, connected to this server as q2c would be."""
        return connect_tryton(
            client or self.client(),
            base_url=self.base_url,
            database=self.database,
            username=self.username,
            password=self.password,
            recorder=recorder,
            bucket=bucket,
            stats=self.call_stats,
        )

    def psa(self, client: httpx.Client | None = None) -> TrytonPsa:
        return TrytonPsa(self.erp(client).rpc)

    def start(self) -> TrytonServer:
        if self._process is not None:
            return self
        cached = self._restore()
        self._setup, self.password = cached.setup, cached.password
        self._spawn(self._db_dir(), self.database)
        atexit.register(self.stop)
        return self

    def stop(self) -> None:
        atexit.unregister(self.stop)
        terminate(self._process)
        self._process = None
        if self._created_pg_database:
            with contextlib.suppress(Exception):
                self.pg.drop(self.database)
            self._created_pg_database = False
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> TrytonServer:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- database: cache and restore -------------------------------------------------------

    def _db_dir(self) -> Path:
        return self.workdir / "db"

    def _restore(self) -> _Cached:
        cached = self._load_cache() if self.use_cache else None
        if cached is None:
            cached = self._build_cached()
        else:
            self.timings.cache_hit = True
        self.timings.cold_init_s = cached.meta.get("cold_init_s")
        started = time.perf_counter()
        if self.backend == "sqlite":
            self._db_dir().mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self._cache_file(), self._db_dir() / f"{self.database}.sqlite")
        else:
            self.pg.create(self.database, template=self._template_name())
            self._created_pg_database = True
        self.timings.restore_s = time.perf_counter() - started
        return cached

    def _cache_file(self) -> Path:
        return self.cache / f"{self.key}.sqlite"

    def _meta_file(self) -> Path:
        return self.cache / f"{self.key}.json"

    def _template_name(self) -> str:
        """The cached template database; its admin password lives in this cache directory's
        metadata, so the name also carries the directory (two caches never share one)."""
        where = hashlib.sha256(str(self.cache.resolve()).encode()).hexdigest()[:8]
        return f"q2c_tpl_{self.key.split('-', 1)[1]}_{where}"

    def _load_cache(self) -> _Cached | None:
        meta_file = self._meta_file()
        if not meta_file.exists():
            return None
        if self.backend == "sqlite" and not self._cache_file().exists():
            return None
        if self.backend == "postgresql" and not self.pg.exists(self._template_name()):
            return None
        meta = json.loads(meta_file.read_text())
        return _Cached(TrytonSetup.from_json(meta["setup"]), meta["password"], meta)

    def _build_cached(self) -> _Cached:
        """Initialise a database from scratch and store it in the cache (under a lock)."""
        self.cache.mkdir(parents=True, exist_ok=True)
        with locked(self.cache / f"{self.key}.lock"):
            if self.use_cache and (cached := self._load_cache()) is not None:
                return cached  # another process built it while we waited
            build = Path(tempfile.mkdtemp(prefix="build-", dir=self.cache))
            try:
                return self._initialise(build)
            finally:
                shutil.rmtree(build, ignore_errors=True)

    def _initialise(self, build: Path) -> _Cached:
        password = secrets.token_urlsafe(18)
        if self.backend == "sqlite":
            name, db_dir = "q2c", build / "db"
            db_dir.mkdir()
            (db_dir / f"{name}.sqlite").touch()  # trytond-admin does not create the file
        else:
            name, db_dir = self._template_name(), build
            self.pg.drop(name)
            self.pg.create(name)
        started = time.perf_counter()
        self._run_admin(build, db_dir, name, password)
        self.timings.admin_s = time.perf_counter() - started
        self.password = password
        self._spawn(db_dir, name, workdir=build)
        try:
            started = time.perf_counter()
            with httpx.Client(timeout=120.0) as client:
                setup = provision(self._connect(client, name), today=self.today)
            self.timings.provision_s = time.perf_counter() - started
        finally:
            terminate(self._process)
            self._process = None
        cold = round(self.timings.admin_s + self.timings.provision_s, 3)
        meta = {
            "key": self.key,
            "backend": self.backend,
            "modules": list(self.modules),
            "versions": tryton_versions(),
            "provision_version": PROVISION_VERSION,
            "init_version": INIT_VERSION,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "cold_init_s": cold,
            "admin_s": round(self.timings.admin_s, 3),
            "provision_s": round(self.timings.provision_s, 3),
            "password": password,
            "setup": setup.as_json(),
        }
        if self.backend == "sqlite":
            staged = self._cache_file().with_suffix(".sqlite.tmp")
            sqlite_snapshot(db_dir / f"{name}.sqlite", staged)
            os.replace(staged, self._cache_file())
        staged_meta = self._meta_file().with_suffix(".json.tmp")
        staged_meta.write_text(json.dumps(meta, indent=2))
        staged_meta.chmod(0o600)
        os.replace(staged_meta, self._meta_file())
        return _Cached(setup, password, meta)

    # --- processes -------------------------------------------------------------------------

    def _config(self, db_dir: Path, port: int) -> str:
        if self.backend == "sqlite":
            database = f"uri = sqlite://\npath = {db_dir}\n"
        else:
            database = f"uri = {relaxed_uri(self.postgres_uri)}\n"
        return (
            f"[database]\n{database}list = False\n"
            f"[web]\nlisten = 127.0.0.1:{port}\n"
            f"[session]\ntimeout = {self.session_timeout}\n"
        )

    def _env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRYTOND")}
        env.update(extra)
        return env

    def _run_admin(self, build: Path, db_dir: Path, name: str, password: str) -> None:
        conf = build / "admin.conf"
        conf.write_text(self._config(db_dir, 0))
        passfile = build / "passfile"
        passfile.write_text(password + "\n")
        passfile.chmod(0o600)
        command = [
            sys.executable, "-m", "trytond.cli.admin", "-c", str(conf), "-d", name,
            "--activate-dependencies", "-u", *self.modules, "--email", "admin@example.com",
        ]  # fmt: skip
        log = build / "trytond-admin.log"
        with log.open("wb") as out:
            done = subprocess.run(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self._env(TRYTONPASSFILE=str(passfile)),
                check=False,
            )
        if done.returncode != 0:
            raise FatalError(
                "trytond-admin could not initialise the Tryton database",
                detail=f"{' '.join(command)} -> {done.returncode}: {log_tail(log)}",
                system="tryton",
            )

    def _spawn(self, db_dir: Path, name: str, *, workdir: Path | None = None) -> None:
        """Start trytond on a free port and wait for its first answer (a few tries on a
        port race)."""
        where = workdir or self.workdir
        where.mkdir(parents=True, exist_ok=True)
        log = where / "trytond.log"
        last_error = ""
        fixed = self.requested_port if workdir is None else 0  # building a cache: any port
        for _attempt in range(1 if fixed else 3):
            self.port = fixed or free_port()
            conf = where / "trytond.conf"
            conf.write_text(self._config(db_dir, self.port))
            command = [sys.executable, "-m", "trytond.cli", "-c", str(conf), "-d", name]
            started = time.perf_counter()
            with log.open("ab") as out:
                process = subprocess.Popen(
                    command,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=self._env(),
                )
            self._process = process
            if self._wait_ready(process):
                self.timings.start_s = time.perf_counter() - started
                return
            last_error = log_tail(log)
            terminate(process)
            self._process = None
        raise FatalError(
            "the Tryton server did not start",
            detail=f"trytond -d {name} on 127.0.0.1: {last_error}",
            system="tryton",
        )

    def _wait_ready(self, process: subprocess.Popen[bytes]) -> bool:
        body = b'{"id":0,"method":"common.server.version","params":[]}'
        deadline = time.monotonic() + READY_TIMEOUT
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    return False
                try:
                    response = client.post(
                        f"{self.base_url}/rpc/",
                        content=body,
                        headers={"Content-Type": "application/json"},
                    )
                    if response.status_code == 200:
                        return True
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
        return False
