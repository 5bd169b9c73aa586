"""What ``integration serve`` needs to run its children: a port check up front and a restart pace.

A port already taken would otherwise surface as gunicorn retrying to bind for seconds and then
dying among its own log lines; a worker that crashes at start-up would be restarted in a tight
loop forever. The supervisor asks ``listen_problem`` first and paces restarts with
``RestartPolicy``.
"""
from __future__ import annotations

import errno
import socket
from dataclasses import dataclass, field


def listen_problem(host: str, port: int) -> str | None:
    """Why gunicorn could not listen on ``host:port`` (None when it can).

    Binds the way gunicorn does (``SO_REUSEADDR``, so a port in TIME_WAIT is not mistaken for a
    busy one) and lets go at once; gunicorn binds again a moment later.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return f"cannot resolve host {host!r}: {exc.strerror}"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return f"port {port} on {host} is already in use"
            return f"cannot listen on {host}:{port}: {exc.strerror or exc}"
    return None


@dataclass
class RestartPolicy:
    """Seconds to wait before restarting a child that exited: ``first``, doubling per quick exit, up
    to ``cap``; a child that ran ``healthy_after`` seconds or more starts the count again.

    Deterministic on purpose: the jittered backoffs in ``http`` and ``inbox`` spread many clients
    apart, while here one supervisor paces one child, and an operator reads the delay it announces.
    """

    first: float = 0.5
    cap: float = 30.0
    healthy_after: float = 60.0
    _quick_exits: int = field(default=0, init=False)

    def delay(self, ran_for: float) -> float:
        """The wait before the next start, for a child that ran ``ran_for`` seconds before exiting."""
        if ran_for >= self.healthy_after:
            self._quick_exits = 0
        wait = min(self.cap, self.first * 2 ** self._quick_exits)
        self._quick_exits += 1
        return wait
