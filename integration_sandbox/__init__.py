"""Built-in Zuora and billing-platform sandboxes, the local stack and the demo.

Shipped in the same distribution as the service, but apart from it: the product package
``integration`` never imports this one (only its ``demo`` and ``sandbox`` commands start it).
"""
