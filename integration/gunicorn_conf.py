"""gunicorn settings used by ``integration serve`` and the Procfile (``-c python:integration.gunicorn_conf``).

Database connections open lazily in each worker after the fork; with prometheus-client's
multiprocess mode, a dead worker's gauges are dropped here.

The worker is gthread reading whole requests (head and body) in its event loop under one deadline, with
the webhooks' credential and signature checks run before a body is read, so slow clients cannot hold its
threads; it answers gunicorn's own errors as JSON (``integration.web.gunicorn_worker``). gunicorn's own log
lines pass the service's secret masking (``integration.web.gunicorn_logging``).
"""
import os

worker_class = "integration.web.gunicorn_worker.HeadFirstWorker"
logger_class = "integration.web.gunicorn_logging.ServiceLogger"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
graceful_timeout = 20
timeout = 30
accesslog = None


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess
        multiprocess.mark_process_dead(worker.pid)
