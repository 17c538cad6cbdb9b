"""A real STAC API (stac-fastapi-pgstac, Transaction extension) on PostgreSQL + PostGIS, on
127.0.0.1.

PostgreSQL and PostGIS come from Debian packages, stac-fastapi-pgstac and pypgstac from a separate
venv (``.venv-stacapi``: their pins conflict with the main venv); ``.ci/install-stac-server.sh``
installs both. The database lives in a fresh temporary cluster (``initdb``), run as the
``postgres`` user when the tests run as root (PostgreSQL refuses root). Every step is
time-bounded and everything started is stopped and removed on exit.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.conftest import free_port, stop_process

REPO = Path(__file__).resolve().parents[3]
STARTUP_TIMEOUT_S = 90.0


def stacapi_venv() -> Path:
    return Path(os.environ.get("COALIGN_STACAPI_VENV", REPO / ".venv-stacapi"))


def pg_bindir() -> Path | None:
    """The newest PostgreSQL server installation (``COALIGN_PG_BIN`` overrides)."""
    if os.environ.get("COALIGN_PG_BIN"):
        return Path(os.environ["COALIGN_PG_BIN"])
    found = [
        p
        for p in Path("/usr/lib/postgresql").glob("*/bin")
        if (p / "initdb").exists() and (p / "pg_ctl").exists()
    ]
    return (
        max(found, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
        if found
        else None
    )


def _postgis_installed(bindir: Path) -> bool:
    try:
        share = subprocess.run(
            [str(bindir / "pg_config"), "--sharedir"], capture_output=True, text=True, timeout=20
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return False
    return bool(share) and (Path(share) / "extension" / "postgis.control").exists()


def missing_prerequisites() -> str:
    """What is missing to run the server, or "" when everything is there."""
    missing = []
    bindir = pg_bindir()
    if bindir is None:
        missing.append("PostgreSQL server (Debian package postgresql)")
    elif not _postgis_installed(bindir):
        missing.append(
            f"PostGIS for PostgreSQL {bindir.parent.name} (Debian package "
            f"postgresql-{bindir.parent.name}-postgis-3)"
        )
    venv = stacapi_venv()
    absent = [tool for tool in ("uvicorn", "pypgstac") if not (venv / "bin" / tool).exists()]
    if absent:
        missing.append(f"stac-fastapi-pgstac/pypgstac venv at {venv} (no {', '.join(absent)})")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            missing.append("the 'postgres' user (PostgreSQL refuses to run as root)")
        if shutil.which("runuser") is None:
            missing.append("runuser (util-linux)")
    return "; ".join(missing)


@dataclass(frozen=True)
class StacApiServer:
    url: str
    dsn: str
    log: Path


def _run(cmd: list[str], what: str, timeout: float = 60.0, **kwargs) -> None:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"{what}: timed out after {timeout:.0f} s: {' '.join(cmd)}") from exc
    if r.returncode != 0:
        raise RuntimeError(
            f"{what} failed ({r.returncode}): "
            f"{' '.join(cmd)}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
        )


def _tail(path: Path, n: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return "(no log)"


@dataclass(frozen=True)
class _Postgres:
    """A throw-away PostgreSQL cluster on 127.0.0.1, run as ``postgres`` when we are root."""

    bindir: Path
    work: Path  # the cluster's folder; also its socket directory
    port: int
    as_postgres: tuple[str, ...]

    @property
    def data(self) -> Path:
        return self.work / "data"

    @property
    def log(self) -> Path:
        return self.work / "postgres.log"

    def start(self) -> None:
        """Create the cluster (trust authentication, no fsync) and start the server."""
        _run(
            [*self.as_postgres, str(self.bindir / "initdb"), "-D", str(self.data)]
            + ["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"],
            "initdb",
        )
        options = (
            f"-p {self.port} -k {self.work} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off"
        )
        _run(
            self._pg_ctl("-l", str(self.log), "-o", options, "-w", "-t", "60", "start"),
            "starting PostgreSQL",
            timeout=90,
        )

    def create_database(self, name: str) -> str:
        """Create database ``name``; returns its DSN."""
        _run(
            [str(self.bindir / "psql"), "-h", "127.0.0.1", "-p", str(self.port)]
            + ["-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1"]
            + ["-c", f"CREATE DATABASE {name}"],
            "creating the database",
        )
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        """Stop the server: a fast shutdown, else an immediate one."""
        try:
            _run(
                self._pg_ctl("-m", "fast", "-w", "-t", "30", "stop"),
                "stopping PostgreSQL",
                timeout=60,
            )
        except RuntimeError:
            subprocess.run(self._pg_ctl("-m", "immediate", "stop"), capture_output=True, timeout=60)

    def _pg_ctl(self, *args: str) -> list[str]:
        return [*self.as_postgres, str(self.bindir / "pg_ctl"), "-D", str(self.data), *args]


def _start_api(venv: Path, work: Path, pg_port: int, port: int, log_path: Path) -> subprocess.Popen:
    """Start stac-fastapi-pgstac (Transaction extension on) against database ``stac``."""
    env = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "HOME": str(work),
        "LANG": "C.UTF-8",
        "PGUSER": "postgres",
        "PGPASSWORD": "unused-trust-auth",
        "PGHOST": "127.0.0.1",
        "PGPORT": str(pg_port),
        "PGDATABASE": "stac",
        "ENABLE_TRANSACTIONS_EXTENSIONS": "true",
        "DB_MIN_CONN_SIZE": "1",
        "DB_MAX_CONN_SIZE": "4",
    }
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            [str(venv / "bin" / "uvicorn"), "stac_fastapi.pgstac.app:create_app", "--factory"]
            + ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            env=env,
            cwd=work,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _wait_until_serving(api: subprocess.Popen, url: str, log_path: Path) -> None:
    """Wait for the API to answer its ping, then check it declares the Transaction extension."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        if api.poll() is not None:
            raise RuntimeError(f"stac-fastapi exited with {api.returncode}:\n{_tail(log_path)}")
        try:
            if requests.get(f"{url}/_mgmt/ping", timeout=2).status_code == 200:
                break
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"stac-fastapi not answering after {STARTUP_TIMEOUT_S:.0f} s:\n{_tail(log_path)}"
            )
        time.sleep(0.2)
    conforms = requests.get(url, timeout=10).json().get("conformsTo", [])
    if not any("extensions/transaction" in c for c in conforms):
        raise RuntimeError(
            f"the server at {url} does not declare the Transaction extension: {conforms}"
        )


@contextlib.contextmanager
def start_stac_api(log_dir: Path) -> Iterator[StacApiServer]:
    """Start PostgreSQL (fresh cluster), migrate pgstac, start the API; stop and remove all on
    exit."""
    bindir = pg_bindir()
    assert bindir is not None
    venv = stacapi_venv()
    as_postgres = ("runuser", "-u", "postgres", "--") if os.geteuid() == 0 else ()
    # not under pytest's tmp dir: that is private to root, and the server runs as postgres
    work = Path(tempfile.mkdtemp(prefix="coalign-pgstac-"))
    if as_postgres:
        shutil.chown(work, "postgres", "postgres")
    pg = _Postgres(bindir, work, free_port(), as_postgres)
    api_log = log_dir / "stac-fastapi.log"
    pg_started = False
    api: subprocess.Popen | None = None
    try:
        pg.start()
        pg_started = True
        dsn = pg.create_database("stac")
        _run(
            [str(venv / "bin" / "pypgstac"), "migrate", "--dsn", dsn],
            "pypgstac migrate",
            timeout=180,
        )
        api_port = free_port()
        api = _start_api(venv, work, pg.port, api_port, api_log)
        url = f"http://127.0.0.1:{api_port}"
        _wait_until_serving(api, url, api_log)
        yield StacApiServer(url=url, dsn=dsn, log=api_log)
    finally:
        if api is not None:
            stop_process(api)
        if pg_started:
            pg.stop()
        if pg.log.exists():
            shutil.copy2(pg.log, log_dir / "postgres.log")
        shutil.rmtree(work, ignore_errors=True)
