"""The baseline for bench_ingest.py: a bare Flask endpoint that answers 200 and does nothing else.

Served by gunicorn with exactly the service's settings (``-c python:integration.gunicorn_conf``,
same worker count), so the ingest ratio isolates what the service's webhook adds on top of
Flask + gunicorn: Basic auth, body validation, the durable SQLite commit, metrics and the log line.

Run: ``gunicorn -c python:integration.gunicorn_conf --workers 2 --bind 127.0.0.1:8000 bare_app:app``
(with ``bench/`` on ``PYTHONPATH``).
"""
from flask import Flask, jsonify

app = Flask(__name__)


@app.post("/webhooks/zuora")
def zuora_callout():
    """Same path, method and answer shape as the real webhook; no auth, no store."""
    return jsonify({"accepted": True})


@app.get("/healthz")
def healthz():
    """Only so the benchmark can tell the server is up."""
    return jsonify({"status": "ok"})
