"""The library internals the product builds on, named: a new release that moves one fails here, loudly,
naming the class and what it lost, before it can fail at a server's first connection.

Two places subclass a library instead of calling its public API:
- ``integration/web/gunicorn_worker.py``: gunicorn's gthread ``ThreadWorker`` and ``TConn`` (gunicorn 27:
  ``accept(listener)``, ``murder_pending()``; 22 and 23 took ``accept(server, listener)`` and had no
  ``murder_pending``);
- ``integration/clients/zuora_oauth.py``: authlib's ``OAuth2Client``, with ``OAuth2Session``'s classes.
``pyproject.toml`` admits one series of each; a move to another series starts with this file.
"""
from __future__ import annotations

import inspect

import pytest
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.client import OAuth2Client
from gunicorn.workers.gthread import TConn, ThreadWorker

# class → {attribute: the parameter names a method must take (None: an attribute, any shape)}
INTERNALS: dict[type, dict[str, tuple[str, ...] | None]] = {
    ThreadWorker: {
        "accept": ("self", "listener"),
        "on_client_socket_readable": ("self", "conn", "client"),
        "murder_pending": ("self",),
        "enqueue_req": ("self", "conn"),
        "handle_error": ("self", "req", "client", "addr", "exc"),
    },
    TConn: {
        "__init__": ("self", "cfg", "sock", "client", "server"),
        "init": ("self",),
        "close": ("self",),
    },
    OAuth2Client: {
        "__init__": ("self", "session", "client_id", "client_secret", "token_endpoint_auth_method"),
        "register_compliance_hook": ("self", "hook_type", "hook"),
        "fetch_token": ("self", "url", "body", "method", "headers", "auth", "grant_type"),
    },
    OAuth2Session: {
        "client_auth_class": None,
        "token_auth_class": None,
        "oauth_error_class": None,
        "SESSION_REQUEST_PARAMS": None,
    },
}

# attributes gthread sets in __init__ or init_process that HeadFirstWorker reads and changes
THREAD_WORKER_STATE = ("poller", "keepalived_conns", "nr_conns", "cfg", "log")


@pytest.mark.parametrize(("owner", "attribute"),
                         [(owner, name) for owner, names in INTERNALS.items() for name in names],
                         ids=lambda value: value.__name__ if isinstance(value, type) else value)
def test_the_internal_the_product_relies_on_is_there(owner, attribute):
    where = f"{owner.__module__}.{owner.__qualname__}"
    assert hasattr(owner, attribute), f"{where} has no attribute {attribute!r} any more"
    wanted = INTERNALS[owner][attribute]
    if wanted is None:
        return
    parameters = list(inspect.signature(getattr(owner, attribute)).parameters)
    assert parameters[:len(wanted)] == list(wanted), (
        f"{where}.{attribute} takes {parameters}, the product calls it as {list(wanted)}")


def test_gthread_worker_state_the_head_reader_shares():
    """The instance attributes are made at run time: read them from a worker built as gunicorn builds one."""
    from gunicorn.config import Config

    from integration.web.gunicorn_worker import HeadFirstWorker

    worker = HeadFirstWorker(age=1, ppid=0, sockets=[], app=None, timeout=30, cfg=Config(), log=None)
    missing = [name for name in THREAD_WORKER_STATE if not hasattr(worker, name)]
    assert not missing, f"gunicorn.workers.gthread.ThreadWorker no longer sets {missing}"
