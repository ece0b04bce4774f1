"""azure-core's retry policy with one change: it never waits past the run's deadline."""

from __future__ import annotations

from typing import Any

from azure.core.pipeline.policies import RetryPolicy

from keyreport.deadline import MIN_CALL_SECONDS, current
from keyreport.errors import DeadlineReached


class DeadlineRetryPolicy(RetryPolicy[Any, Any]):
    """A Retry-After or backoff wait that would end past the deadline ends the call instead of sleeping.

    DeadlineReached is no AzureError, so the policy lets it through without another attempt.
    """

    def sleep(self, settings: dict[str, Any], transport: Any, response: Any = None) -> None:
        wait = (self.get_retry_after(response) if response is not None else None) or self.get_backoff_time(settings)
        if not current().allows(wait + MIN_CALL_SECONDS):
            raise DeadlineReached(f"Azure request not retried: a {wait:.1f} s wait would pass the run's deadline")
        super().sleep(settings, transport, response)
