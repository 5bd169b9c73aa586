"""The two remote APIs: Zuora (OAuth client credentials) and the Togai-compatible billing platform.

Retries, pacing, timeouts and typed errors live here; no store and no Flask.
"""
