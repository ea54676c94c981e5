"""Servers the scale-out tests start on 127.0.0.1 from Debian's packages: PostgreSQL (Dagster's
run and event storage) and Redis (the Celery broker). Tests that need one are skipped, never
faked, when its package is absent; `.ci/run` installs both."""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

PG_BIN = next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)), None)
REDIS_SERVER = shutil.which("redis-server") or ("/usr/bin/redis-server"
                                                if Path("/usr/bin/redis-server").is_file() else None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def as_postgres(*cmd: str) -> None:
    user = [] if os.geteuid() != 0 else ["runuser", "-u", "postgres", "--"]
    subprocess.run([*user, *cmd], check=True, capture_output=True, timeout=120)


ROLE = "clustering_dag"


@contextmanager
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server of its own, as a deployment should run it: TCP connections need a
    password (SCRAM), the superuser is reachable only through the server's private socket folder,
    and the pipeline connects as a role of its own (``clustering_dag``, allowed to create
    databases) to a database it owns. Yields that role's SQLAlchemy URL, password included."""
    if PG_BIN is None or (os.geteuid() == 0 and not shutil.which("runuser")):
        pytest.skip("needs Debian's postgresql package (apt-get install postgresql)")
    # Not under pytest's tmp folder: the postgres user must be able to reach it.
    folder = Path(tempfile.mkdtemp(prefix="clustering_dag_pg_"))
    data, sockets = folder / "data", folder / "sockets"
    data.mkdir()
    sockets.mkdir()
    if os.geteuid() == 0:
        pg = pwd.getpwnam("postgres")
        for path in (folder, data, sockets):
            os.chown(path, pg.pw_uid, pg.pw_gid)
    os.chmod(sockets, 0o700)
    port, password = free_port(), secrets.token_urlsafe(24)
    as_postgres(f"{PG_BIN}/initdb", "-D", str(data), "--auth-local=trust", "--auth-host=scram-sha-256",
                "-U", "postgres")
    as_postgres(f"{PG_BIN}/pg_ctl", "-D", str(data), "-w", "-l", str(folder / "log"),
                "-o", f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1", "start")
    psql = [f"{PG_BIN}/psql", "-h", str(sockets), "-p", str(port), "-U", "postgres", "-v", "ON_ERROR_STOP=1"]
    as_postgres(*psql, "-c", f"CREATE ROLE {ROLE} LOGIN CREATEDB PASSWORD '{password}'")
    as_postgres(*psql, "-c", f"CREATE DATABASE {ROLE} OWNER {ROLE}")
    url = f"postgresql+psycopg2://{ROLE}:{password}@127.0.0.1:{port}/{ROLE}"
    _POSTGRES[url] = (data, str(port))
    try:
        yield url
    finally:
        _POSTGRES.pop(url, None)
        as_postgres(f"{PG_BIN}/pg_ctl", "-D", str(data), "-m", "fast", "stop")
        shutil.rmtree(folder, ignore_errors=True)


def _start_redis(port: int, password: str) -> subprocess.Popen:
    proc = subprocess.Popen([REDIS_SERVER, "-"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, text=True)
    proc.stdin.write(f"port {port}\nbind 127.0.0.1\nsave \"\"\nappendonly no\nrequirepass {password}\n")
    proc.stdin.close()
    wait_for_port(port)
    return proc


# The servers running now, by the URL their context manager yielded: what restart_* act on.
_REDIS: dict[str, list] = {}
_POSTGRES: dict[str, tuple[Path, str]] = {}


@contextmanager
def redis_server() -> Iterator[str]:
    """A Redis server of its own, nothing persisted, that answers only clients with its password
    (``requirepass``, given in a config file on stdin, not on the command line where `ps` shows it);
    yields its URL with the password (``redis://:<password>@127.0.0.1:<port>``)."""
    if REDIS_SERVER is None:
        pytest.skip("needs Debian's redis-server package (apt-get install redis-server)")
    port, password = free_port(), secrets.token_urlsafe(24)
    url = f"redis://:{password}@127.0.0.1:{port}"
    _REDIS[url] = [_start_redis(port, password), port, password]
    try:
        yield url
    finally:
        proc = _REDIS.pop(url)[0]
        proc.terminate()
        proc.wait(timeout=30)


def restart_redis(url: str, down_seconds: float) -> None:
    """Stop the Redis server of ``url`` (everything it held is lost: nothing is persisted) and
    start it again after ``down_seconds``, on the same port with the same password."""
    proc, port, password = _REDIS[url]
    proc.terminate()
    proc.wait(timeout=30)
    time.sleep(down_seconds)
    _REDIS[url][0] = _start_redis(port, password)


def restart_postgres(url: str) -> None:
    """Restart the PostgreSQL server of ``url`` (``pg_ctl restart -m fast``: every connection is
    cut, as when the database host reboots or fails over)."""
    data, port = _POSTGRES[url]
    as_postgres(f"{PG_BIN}/pg_ctl", "-D", str(data), "-w", "-l", str(data.parent / "log"),
                "-m", "fast", "restart")
    wait_for_port(int(port))


PG_URL_VARIABLE = "CLUSTERING_DAG_PG_URL"


def postgres_dagster_home(folder: Path) -> Path:
    """A DAGSTER_HOME whose runs, events and schedules live in PostgreSQL, as the README's
    ``dagster.yaml`` says: the URL, password included, comes from ``$CLUSTERING_DAG_PG_URL`` in
    each process's environment, never from the file."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dagster.yaml").write_text(
        f"storage:\n  postgres:\n    postgres_url:\n      env: {PG_URL_VARIABLE}\n"
        # The daemon's watch on runs launched from the UI or a schedule: a run whose process died
        # (its host lost, its database unreachable for long) is marked failed, never STARTED for ever.
        "run_monitoring:\n  enabled: true\n  max_resume_run_attempts: 0\n")
    return folder
