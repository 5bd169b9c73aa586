"""Zuora's side of the integration: its REST client and the typed objects its answers become.

``client`` makes the calls (``paging`` reads Object Query pages, ``usage_import`` checks a usage
upload and waits for it, ``answers`` reads Zuora's error shapes, ``oauth`` holds the token); the
shared HTTP plumbing (retries, pacing, bodies) stays in ``integration.clients``.
"""
