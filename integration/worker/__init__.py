"""The worker: the claim-run-record loop, its handlers, and the scheduled jobs it runs."""
