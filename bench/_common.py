"""Shared plumbing for the benchmark scripts in this folder (not a benchmark itself).

WHY one module: every script starts real processes with the same environment, waits for them
the same way, stops them by their own PID only, and prints the same kind of table. Keeping that
here leaves each ``bench_*.py`` to say what it measures.

The benchmarks report *ratios of things measured side by side in one run*: the machine is shared
and noisy, so absolute rates drift from run to run while a ratio of two rates measured back to
back mostly does not.
"""
from __future__ import annotations

import base64
import os
import platform
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
PYTHON = sys.executable

# Where a bench script can be imported from when it runs from another folder.
if str(REPO_DIR) not in sys.path:
    sys.path.insert(0, str(REPO_DIR))

CALLOUT_USERNAME = "zuora-callouts"
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def workdir(prefix: str, given: str | None = None) -> Path:
    """A fresh folder for the store and logs: ``given`` if set, else a new temporary one."""
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return Path(tempfile.mkdtemp(prefix=f"bench-{prefix}-"))


def filesystem_of(path: Path) -> str:
    """The filesystem type holding ``path`` (fsync cost depends on it: ext4 vs tmpfs)."""
    best, kind = "", "?"
    try:
        with open("/proc/mounts", encoding="utf-8") as mounts:
            for line in mounts:
                parts = line.split()
                if len(parts) >= 3 and str(path.resolve()).startswith(parts[1]) and len(parts[1]) > len(best):
                    best, kind = parts[1], parts[2]
    except OSError:
        pass
    return kind


ENGINES = ("sqlite", "postgresql")
POSTGRES_ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def engines_of(choice: str) -> list[str]:
    """``--engine`` as a list: one engine, or both for ``both``."""
    return list(ENGINES) if choice == "both" else [choice]


def add_engine_option(parser) -> None:
    parser.add_argument("--engine", choices=(*ENGINES, "both"), default="both",
                        help="store engine(s) to measure (default both; PostgreSQL from $BENCH_POSTGRES_URL, "
                             f"default {POSTGRES_ADMIN_URL.split('@')[-1]})")


class BenchStore:
    """The store of one benchmark run: a SQLite file in ``folder``, or a PostgreSQL database of this
    run's own (``bench_<pid>_<hex>``), created on entry and dropped, connections and all, on exit.

    WHY a database per run: a benchmark must leave nothing behind, and must never meet rows (or
    locks) of another run or of the test suite on the same server.
    """

    def __init__(self, engine: str, folder: Path):
        self.engine, self.folder = engine, folder
        self.name = f"bench_{os.getpid()}_{secrets.token_hex(3)}"
        self.url = f"sqlite:///{folder / 'integration.db'}"

    def _admin(self, sql: str) -> None:
        import psycopg

        from integration.store.engine import libpq_url

        with psycopg.connect(libpq_url(POSTGRES_ADMIN_URL), autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql)

    def __enter__(self) -> BenchStore:
        if self.engine == "postgresql":
            self._admin(f'CREATE DATABASE "{self.name}"')
            self.url = f"{POSTGRES_ADMIN_URL.rpartition('/')[0]}/{self.name}"
        return self

    def __exit__(self, *exc) -> None:
        if self.engine == "postgresql":
            self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def describe(self) -> str:
        if self.engine == "sqlite":
            return f"SQLite {self.folder / 'integration.db'} ({filesystem_of(self.folder)})"
        return f"PostgreSQL {self.url.split('@')[-1]} (dropped afterwards)"


def per_engine(choice: str, wd: Path, measure: Callable[[BenchStore, Path], T], *, label: str = "") -> dict[str, T]:
    """``measure(store, folder)`` once per engine of ``--engine``, each on a store (and in a folder
    under ``wd``) of its own; the results by engine, in the order measured."""
    results: dict[str, T] = {}
    for engine in engines_of(choice):
        folder = wd / f"{label}{engine}"
        folder.mkdir(parents=True, exist_ok=True)
        with BenchStore(engine, folder) as store:
            print(f"\n== {label}{engine}: store {store.describe()}, logs in {folder}")
            results[engine] = measure(store, folder)
    return results


def service_env(db_path: Path | str, *, callout_password: str, zuora_url: str = "http://127.0.0.1:9",
                billing_url: str = "http://127.0.0.1:9", zuora_client_id: str = "bench-client",
                zuora_client_secret: str = "bench-client-secret-0000", billing_token: str = "bench-billing-token",
                webhook_secret: str | None = None, extra: dict | None = None) -> dict:
    """The environment the real ``integration`` commands need, pointing at ``db_path`` (a SQLite
    file, or a database URL given as a string).

    Inherited ZUORA_*/BILLING_*/ADMIN_* variables are dropped so a developer's own settings
    never leak into a benchmark.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZUORA_", "BILLING_", "ADMIN_",
                                                                      "INTEGRATION_", "PROMETHEUS_"))}
    env.update({
        "DATABASE_URL": db_path if isinstance(db_path, str) else f"sqlite:///{db_path}",
        "ZUORA_BASE_URL": zuora_url,
        "ZUORA_CLIENT_ID": zuora_client_id,
        "ZUORA_CLIENT_SECRET": zuora_client_secret,
        "BILLING_BASE_URL": billing_url,
        "BILLING_API_TOKEN": billing_token,
        "BILLING_WEBHOOK_SECRET": webhook_secret or "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode(),
        "ADMIN_TOKEN": secrets.token_urlsafe(32),
        "ZUORA_CALLOUT_USERNAME": CALLOUT_USERNAME,
        "ZUORA_CALLOUT_PASSWORD": callout_password,
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join(p for p in (str(BENCH_DIR), str(REPO_DIR), os.environ.get("PYTHONPATH", ""))
                                      if p),
    })
    env.update(extra or {})
    return env


class Process:
    """A child process whose output goes to a log file; stopped by its own PID (SIGTERM, then SIGKILL)."""

    def __init__(self, args: Sequence[str], *, env: dict, log_path: Path, cwd: Path | None = None):
        self.args = list(args)
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - lives as long as the child; closed by stop()
        self.popen = subprocess.Popen(self.args, env=env, cwd=str(cwd) if cwd else None,
                                      stdout=self._log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)
        self._log.close()
        return self.popen.returncode

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def __enter__(self) -> Process:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def wait_until(predicate: Callable[[], object], *, timeout: float, what: str, interval: float = 0.05,
               process: Process | None = None):
    """Poll ``predicate`` until it returns something truthy; raise naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and not process.alive():
            raise RuntimeError(f"{what}: process exited with {process.popen.returncode}:\n{process.tail()}")
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise TimeoutError(f"{what}: not within {timeout:.0f}s" + (f"\n{process.tail()}" if process else ""))


def http_ok(url: str) -> bool:
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    try:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=1)
        conn.request("GET", parts.path or "/")
        status = conn.getresponse().status
        conn.close()
        return status == 200
    except OSError:
        return False


def format_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    cells = [list(map(str, headers))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        padded = (c.rjust(w) if n and _numeric(c) else c.ljust(w) for c, w in zip(row, widths, strict=False))
        lines.append("  ".join(padded).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _numeric(text: str) -> bool:
    return text.replace(".", "", 1).replace("-", "", 1).replace(",", "").replace("x", "").strip().isdigit()


def machine_line() -> str:
    return (f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}  {platform.node()}  {os.cpu_count()} cores  "
            f"Python {platform.python_version()}")


def rss_kib(pid: int) -> int:
    """VmRSS of a process in KiB, from /proc/<pid>/status."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (from /proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_of(pid: int) -> list[int]:
    """Direct children of a process (from /proc/<pid>/task/*/children)."""
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as f:
                found += [int(p) for p in f.read().split()]
    except OSError:
        pass
    return found


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of a process and all its live descendants."""
    total = 0.0
    stack = [pid]
    while stack:
        current = stack.pop()
        try:
            total += cpu_seconds(current)
        except (OSError, IndexError):
            continue
        stack += children_of(current)
    return total
