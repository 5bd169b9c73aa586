"""The scheduled retry of the failure list (CONTRACT §5): twice a day by default."""
from __future__ import annotations

from typing import Callable

from .services import Services


def scheduled_retry_job(services: Services) -> Callable[[], None]:
    """A periodic job for the worker loop. Filled in with the operator surface."""
    def job() -> None:
        return None
    return job
