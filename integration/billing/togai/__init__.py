"""The Togai adapter of the billing port (integration.billing.port): ``TogaiPlatform``."""
