"""The library internals the product builds on, named: a new release that moves one fails here, loudly,
naming the class and what it lost, before it can fail at a server's first connection.

Two places subclass a library instead of calling its public API:
- ``integration/web/gunicorn_worker.py`` and ``request_reader.py``: gunicorn's gthread ``ThreadWorker`` and
  ``TConn``, and its HTTP parser's pieces, to read a whole request in the event loop (gunicorn 27:
  ``accept(listener)``, ``murder_pending()``; 22 and 23 took ``accept(server, listener)`` and had no
  ``murder_pending``); ``gunicorn_logging.py``: ``glogging.Logger``, to mask secrets in its lines;
- ``integration/zuora/oauth.py``: authlib's ``OAuth2Client``, with ``OAuth2Session``'s classes.
``pyproject.toml`` admits one series of each; a move to another series starts with this file.
"""
from __future__ import annotations

import importlib
import inspect
import socket

import pytest
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.client import OAuth2Client
from gunicorn import glogging
from gunicorn.config import Config
from gunicorn.http.body import ChunkedReader, LengthReader
from gunicorn.http.message import Request
from gunicorn.http.parser import RequestParser
from gunicorn.http.unreader import IterUnreader
from gunicorn.workers.gthread import TConn, ThreadWorker

# class → {attribute: the parameter names a method must take (None: an attribute, any shape)}
INTERNALS: dict[type, dict[str, tuple[str, ...] | None]] = {
    ThreadWorker: {
        "accept": ("self", "listener"),
        "on_client_socket_readable": ("self", "conn", "client"),
        "murder_pending": ("self",),
        "enqueue_req": ("self", "conn"),
        "handle_error": ("self", "req", "client", "addr", "exc"),
        "finish_request": ("self", "conn", "fs"),
    },
    TConn: {
        "__init__": ("self", "cfg", "sock", "client", "server"),
        "init": ("self",),
        "close": ("self",),
    },
    RequestParser: {"mesg_class": None},
    Request: {
        "__init__": ("self", "cfg", "unreader", "peer_addr", "req_number"),
        "_expected_100_continue": None,
        "_policy_expect_continue": None,
    },
    LengthReader: {"__init__": ("self", "unreader", "length")},
    ChunkedReader: {"__init__": ("self", "req", "unreader")},
    IterUnreader: {"__init__": ("self", "iterable")},
    glogging.Logger: {"setup": ("self", "cfg")},
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

# attributes gthread sets in __init__ that HeadFirstWorker reads and changes, and those of a connection
THREAD_WORKER_STATE = ("poller", "keepalived_conns", "nr_conns", "cfg", "log")
CONNECTION_STATE = ("parser", "data_ready", "timeout", "sock", "client")
# module-level names imported by the product: a release that drops one breaks the import at start
MODULE_NAMES = {
    "gunicorn.http.errors": ("ConfigurationProblem", "ParseException", "NoMoreData", "InvalidChunkSize",
                             "InvalidChunkExtension", "ChunkMissingTerminator", "ObsoleteFolding",
                             "InvalidSchemeHeaders", "InvalidHeaderName", "InvalidHeader", "InvalidProxyHeader",
                             "InvalidRequestMethod", "InvalidRequestLine", "InvalidProxyLine", "InvalidHTTPVersion",
                             "ForbiddenProxyRequest", "UnsupportedTransferCoding", "ExpectationFailed",
                             "LimitRequestHeaders", "LimitRequestLine"),
    "gunicorn.util": ("write_nonblock",),
    "authlib.integrations.base_client": ("OAuthError",),
}


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


def test_gthread_worker_and_connection_state_the_request_reader_shares():
    """Instance attributes are made at run time: read them from objects built as gunicorn builds them."""
    from integration.web.gunicorn_worker import HeadFirstWorker

    worker = HeadFirstWorker(age=1, ppid=0, sockets=[], app=None, timeout=30, cfg=Config(), log=None)
    missing = [name for name in THREAD_WORKER_STATE if not hasattr(worker, name)]
    assert not missing, f"gunicorn.workers.gthread.ThreadWorker no longer sets {missing}"
    ours, theirs = socket.socketpair()
    try:
        conn = TConn(Config(), ours, ("127.0.0.1", 1), ("127.0.0.1", 2))
        conn.init()
        missing = [name for name in CONNECTION_STATE if not hasattr(conn, name)]
        assert not missing, f"gunicorn.workers.gthread.TConn no longer sets {missing}"
        assert hasattr(conn.parser, "unreader"), "gunicorn.http.parser.RequestParser no longer sets 'unreader'"
    finally:
        ours.close()
        theirs.close()


@pytest.mark.parametrize(("module", "name"), [(m, n) for m, names in MODULE_NAMES.items() for n in names])
def test_the_module_name_the_product_imports_is_there(module, name):
    assert hasattr(importlib.import_module(module), name), f"{module} has no {name!r} any more"
