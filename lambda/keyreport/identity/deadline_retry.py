"""azure-core's retry policy, except that it never waits past the run's deadline nor longer than the sinks would."""

from __future__ import annotations

from typing import Any

from azure.core.pipeline.policies import RetryPolicy

from keyreport.deadline import MIN_CALL_SECONDS, current
from keyreport.errors import DeadlineReached
from keyreport.sinks.retry import Backoff


class DeadlineRetryPolicy(RetryPolicy[Any, Any]):
    """A Retry-After or backoff wait that would end past the deadline ends the call instead of sleeping.

    DeadlineReached is no AzureError, so the policy lets it through without another attempt.
    """

    def get_retry_after(self, response: Any) -> float | None:
        """A Retry-After over the sinks' cap is ignored, the short backoff applies: azure-core would sleep it
        out, and without a deadline (a workstation) nothing else would stop a day's wait."""
        wait: float | None = super().get_retry_after(response)
        return None if wait is not None and wait > Backoff.max_retry_after_seconds else wait

    def sleep(self, settings: dict[str, Any], transport: Any, response: Any = None) -> None:
        wait = (self.get_retry_after(response) if response is not None else None) or self.get_backoff_time(settings)
        if not current().allows(wait + MIN_CALL_SECONDS):
            raise DeadlineReached(f"Azure request not retried: a {wait:.1f} s wait would pass the run's deadline")
        super().sleep(settings, transport, response)
