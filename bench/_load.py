"""A small closed-loop HTTP load generator: a fixed list of requests, a pool of threads, one
keep-alive connection per thread.

WHY http.client and not requests: on a 2-core machine the client shares the CPU with the server
under test, and requests spends several times more CPU per call than the bare standard library.
A lighter client leaves more of the machine to the servers, so the ratio we print says more about
them and less about the client. Both targets always get the very same client, so whatever the
client costs, it costs both.
"""
from __future__ import annotations

import http.client
import itertools
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: bytes
    headers: dict


@dataclass
class LoadResult:
    sent: int
    seconds: float
    statuses: Counter = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    accepted: list[int] = field(default_factory=list)  # indexes of requests answered 200
    client_cpu_seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else float("nan")

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


class _Connection:
    def __init__(self, host: str, port: int, timeout: float):
        self.host, self.port, self.timeout = host, port, timeout
        self.conn: http.client.HTTPConnection | None = None

    def send(self, req: Request) -> int:
        """One request; a connection the server closed between requests is reopened once."""
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.conn.request(req.method, req.path, body=req.body, headers=req.headers)
                resp = self.conn.getresponse()
                resp.read()
                if resp.getheader("Connection", "").lower() == "close":
                    self.close()
                return resp.status
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                    http.client.CannotSendRequest, http.client.BadStatusLine):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def run_load(host: str, port: int, requests: Sequence[Request], *, concurrency: int,
             timeout: float = 30.0) -> LoadResult:
    """Send every request once over ``concurrency`` keep-alive connections; time the whole batch."""
    counter = itertools.count()
    lock = threading.Lock()
    result = LoadResult(sent=len(requests), seconds=0.0)
    ready = threading.Barrier(concurrency + 1)

    def worker() -> None:
        conn = _Connection(host, port, timeout)
        statuses: Counter = Counter()
        latencies: list[float] = []
        accepted: list[int] = []
        # Connect before the clock starts: connection setup is not what we measure.
        try:
            conn.conn = http.client.HTTPConnection(host, port, timeout=timeout)
            conn.conn.connect()
        except OSError:
            conn.close()
        ready.wait()
        while True:
            index = next(counter)
            if index >= len(requests):
                break
            started = time.perf_counter()
            try:
                status = conn.send(requests[index])
            except OSError as exc:
                statuses[f"error:{type(exc).__name__}"] += 1
                continue
            latencies.append(time.perf_counter() - started)
            statuses[status] += 1
            if status == 200:
                accepted.append(index)
        conn.close()
        with lock:
            result.statuses.update(statuses)
            result.latencies.extend(latencies)
            result.accepted.extend(accepted)

    threads = [threading.Thread(target=worker, name=f"load-{n}", daemon=True) for n in range(concurrency)]
    for thread in threads:
        thread.start()
    cpu_before = time.process_time()
    ready.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    result.seconds = time.perf_counter() - started
    result.client_cpu_seconds = time.process_time() - cpu_before
    return result
