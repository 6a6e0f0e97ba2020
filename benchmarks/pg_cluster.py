"""The local PostgreSQL cluster, for the zero-loss load test: restart it, make sure it is up.

Debian's ``pg_ctlcluster`` on the first cluster (``ls /etc/postgresql | head -n1``, ``main``),
probed with ``pg_isready`` on 127.0.0.1:5432. A restart cuts every client of the cluster, not
only ours: :func:`foreign_clients` tells whether other databases are in use, so the load test
can wait for a quiet moment.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks import harness


def version() -> str | None:
    """The local cluster's version, None when this is not a Debian-style installation."""
    if shutil.which("pg_ctlcluster") is None or not Path("/etc/postgresql").is_dir():
        return None
    versions = sorted(os.listdir("/etc/postgresql"))
    return versions[0] if versions else None


def ready() -> bool:
    probe = ["pg_isready", "-h", "127.0.0.1", "-p", "5432", "-q"]
    return subprocess.run(probe, check=False).returncode == 0


def wait_ready(timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return True
        time.sleep(0.2)
    return False


def control(action: str) -> None:
    """``pg_ctlcluster --skip-systemctl-redirect VERSION main ACTION`` (start, restart...)."""
    cluster = version()
    if cluster is None:
        raise RuntimeError("pg_ctlcluster is not available")
    args = ["pg_ctlcluster", "--skip-systemctl-redirect", cluster, "main", action]
    subprocess.run(args, check=True, timeout=120, stdout=subprocess.DEVNULL)


def restart() -> tuple[float, float]:
    """Restart the cluster and wait until it answers; returns the (start, end) wall times."""
    started = time.time()
    control("restart")
    if not wait_ready(60):
        raise RuntimeError("PostgreSQL did not answer within 60 s of its restart")
    return started, time.time()


def ensure_running(say: Callable[[str], None]) -> None:
    """Start the cluster again if it is down (a failed restart, an interrupted run...)."""
    if ready() or version() is None:
        return
    say("PostgreSQL is down: starting it")
    control("start")
    if not wait_ready(60):
        raise RuntimeError("PostgreSQL did not come back within 60 s")


def foreign_clients(own_database: str) -> dict[str, int]:
    """Client connections to databases other than ``own_database``, per database."""
    import psycopg

    query = (
        "SELECT datname, count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
        "AND datname IS NOT NULL AND datname <> %s AND pid <> pg_backend_pid() GROUP BY 1"
    )
    with psycopg.connect(harness.PG_ADMIN_URL, connect_timeout=5) as conn:
        return {str(name): int(n) for name, n in conn.execute(query, (own_database,))}
