"""The shared HTTP plumbing (retries, pacing, timeouts, bodies, typed errors).

Zuora's client builds on it in ``integration.zuora``, the billing platform's in its adapter
(``integration.billing.togai.client``). No store and no Flask.
"""
