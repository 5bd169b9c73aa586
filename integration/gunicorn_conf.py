"""gunicorn settings used by ``integration serve`` and the Procfile (``-c python:integration.gunicorn_conf``).

Database connections open lazily in each worker after the fork; with prometheus-client's
multiprocess mode, a dead worker's gauges are dropped here.
"""
import os

worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
graceful_timeout = 20
timeout = 30
accesslog = None


def child_exit(server, worker):  # noqa: D103 - gunicorn hook
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess
        multiprocess.mark_process_dead(worker.pid)
