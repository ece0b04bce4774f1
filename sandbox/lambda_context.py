"""The slice of the Lambda context object the handler uses, with a real countdown."""

from __future__ import annotations

import time
import uuid


class LocalLambdaContext:
    def __init__(self, timeout_seconds: float = 900.0, function_name: str = "keyreport") -> None:
        self._end = time.monotonic() + timeout_seconds
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 512
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._end - time.monotonic()) * 1000))
