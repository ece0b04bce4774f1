"""How an SDK error is put into a message: its AWS error code, or the first line of what it says.

SDK messages name resources (ARNs, hosts, secret names), never secret values, so their first line is
safe to log and to store in a run row.
"""

from __future__ import annotations

from botocore.exceptions import ClientError


def aws_error_code(error: BaseException) -> str:
    """The AWS error code of a ClientError ("AccessDenied", "Throttling"); any other error by its type."""
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code")
        if code:
            return str(code)
    return type(error).__name__


def first_line(error: BaseException, limit: int = 300) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:limit] if text else type(error).__name__
