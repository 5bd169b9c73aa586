"""The shared HTTP plumbing (retries, pacing, timeouts, bodies, typed errors) and the billing platform's client.

Zuora's client builds on this plumbing in ``integration.zuora``. No store and no Flask.
"""
