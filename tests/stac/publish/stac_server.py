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
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests

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


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


@contextlib.contextmanager
def start_stac_api(log_dir: Path) -> Iterator[StacApiServer]:
    """Start PostgreSQL (fresh cluster), migrate pgstac, start the API; stop and remove all on
    exit."""
    bindir = pg_bindir()
    assert bindir is not None
    venv = stacapi_venv()
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    # not under pytest's tmp dir: that is private to root, and the server runs as postgres
    work = Path(tempfile.mkdtemp(prefix="coalign-pgstac-"))
    data, pg_log, api_log = work / "data", work / "postgres.log", log_dir / "stac-fastapi.log"
    if as_postgres:
        shutil.chown(work, "postgres", "postgres")
    pg_port, api_port = free_port(), free_port()
    pg_started = False
    api: subprocess.Popen | None = None
    try:
        _run(
            [
                *as_postgres,
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            "initdb",
        )
        options = (
            f"-p {pg_port} -k {work} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off"
        )
        _run(
            [
                *as_postgres,
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(pg_log),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            ],
            "starting PostgreSQL",
            timeout=90,
        )
        pg_started = True
        dsn = f"postgresql://postgres@127.0.0.1:{pg_port}/stac"
        _run(
            [
                str(bindir / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(pg_port),
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                "CREATE DATABASE stac",
            ],
            "creating the database",
        )
        _run(
            [str(venv / "bin" / "pypgstac"), "migrate", "--dsn", dsn],
            "pypgstac migrate",
            timeout=180,
        )
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
        with open(api_log, "wb") as log:
            api = subprocess.Popen(
                [
                    str(venv / "bin" / "uvicorn"),
                    "stac_fastapi.pgstac.app:create_app",
                    "--factory",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(api_port),
                    "--log-level",
                    "warning",
                ],
                env=env,
                cwd=work,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        url = f"http://127.0.0.1:{api_port}"
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if api.poll() is not None:
                raise RuntimeError(f"stac-fastapi exited with {api.returncode}:\n{_tail(api_log)}")
            try:
                if requests.get(f"{url}/_mgmt/ping", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"stac-fastapi not answering after {STARTUP_TIMEOUT_S:.0f} s:\n{_tail(api_log)}"
                )
            time.sleep(0.2)
        conforms = requests.get(url, timeout=10).json().get("conformsTo", [])
        if not any("extensions/transaction" in c for c in conforms):
            raise RuntimeError(
                f"the server at {url} does not declare the Transaction extension: {conforms}"
            )
        yield StacApiServer(url=url, dsn=dsn, log=api_log)
    finally:
        if api is not None:
            api.terminate()
            try:
                api.wait(timeout=15)
            except subprocess.TimeoutExpired:
                api.kill()
                api.wait(timeout=15)
        if pg_started:
            try:
                _run(
                    [
                        *as_postgres,
                        str(bindir / "pg_ctl"),
                        "-D",
                        str(data),
                        "-m",
                        "fast",
                        "-w",
                        "-t",
                        "30",
                        "stop",
                    ],
                    "stopping PostgreSQL",
                    timeout=60,
                )
            except RuntimeError:
                subprocess.run(
                    [
                        *as_postgres,
                        str(bindir / "pg_ctl"),
                        "-D",
                        str(data),
                        "-m",
                        "immediate",
                        "stop",
                    ],
                    capture_output=True,
                    timeout=60,
                )
        if pg_log.exists():
            shutil.copy2(pg_log, log_dir / "postgres.log")
        shutil.rmtree(work, ignore_errors=True)
