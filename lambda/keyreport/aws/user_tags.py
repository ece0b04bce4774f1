"""Users' owner and exception tags from IAM, keeping only the tags keyreport.tags wants.

A scheduled run reads every user's tags from GetAccountAuthorizationDetails (Filter User, 1,000 users a page:
ceil(users / 1,000) calls, where ListUserTags would take one per user), on its own thread while the keys are
listed; the first page is waited for before listing starts (one page covers 1,000 users), the rest overlap.
A re-read of one user (the event path) calls ListUserTags.

A tag read IAM refuses or fails is no failure of the run: its users get no owner and no exception, the run row
says TagsRead false and why (TagsNotRead), and a warning is logged. Tag values are never logged.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from keyreport.errors import DeadlineReached, aws_error_code, first_line
from keyreport.log import logger
from keyreport.tags import TagRules, Tags

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

USERS_PER_PAGE = 1000  # GetAccountAuthorizationDetails' MaxItems maximum
ACCOUNT_CALL = "GetAccountAuthorizationDetails"
USER_CALL = "ListUserTags"


def why_not(call: str, error: Exception) -> str:
    """`call: <IAM error code>` (or the kind of failure when IAM gave no answer): what TagsNotRead says."""
    if isinstance(error, ClientError):
        return f"{call}: {aws_error_code(error)}"
    if isinstance(error, DeadlineReached):
        return f"{call}: the run's deadline came first"
    return f"{call}: {type(error).__name__}: {first_line(error)}"[:300]


class TagWatch:
    """Every user's wanted tags, read on a thread; `tags()` waits for the read to end.

    `tags()` is None when the read failed (then `not_read` says why): no user gets a tag of a partial read, so a
    run's users either all carry their tags or none do, as the run row's TagsRead says.
    """

    def __init__(self, iam: IAMClient, rules: TagRules) -> None:
        self.not_read = ""
        self.calls = 0
        self._iam, self._rules = iam, rules
        self._found: dict[str, Tags] = {}
        self._error: Exception | None = None
        self._stop = threading.Event()
        self._first_page = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._read, name="user-tags", daemon=True)
        self._thread.start()
        self._first_page.wait()

    def tags(self) -> dict[str, Tags] | None:
        """User name -> its wanted tags (users without any are absent); None when the tags were not read."""
        self._done.wait()
        if self._error is not None:
            raise self._error  # a bug, not an AWS answer: it fails the run as it would without the thread
        return None if self.not_read else self._found

    def stop(self) -> None:
        """The run ended early: no further page is asked for (what was read is then not used)."""
        self._stop.set()

    def _read(self) -> None:
        try:
            pages = self._iam.get_paginator("get_account_authorization_details").paginate(
                Filter=["User"], PaginationConfig={"PageSize": USERS_PER_PAGE}
            )
            for page in pages:
                self.calls += 1
                for user in page.get("UserDetailList", []):
                    kept = self._rules.keep(user.get("Tags", []))
                    if kept:
                        self._found[user["UserName"]] = kept
                self._first_page.set()
                if self._stop.is_set():
                    self.not_read = f"{ACCOUNT_CALL}: the run ended before every page was read"
                    break
        except (ClientError, BotoCoreError, DeadlineReached) as error:
            self.not_read = why_not(ACCOUNT_CALL, error)
            logger.warning(
                "user tags not read: no owner or exception this run", extra={"call": ACCOUNT_CALL, "why": self.not_read}
            )
        except Exception as error:  # handed to the main thread by tags()
            self._error = error
        finally:
            if self.not_read:
                self._found = {}
            self._done.set()
            self._first_page.set()


def read_user_tags(iam: IAMClient, name: str, rules: TagRules) -> Tags:
    """One user's wanted tags (ListUserTags, every page); IAM's errors are raised, NoSuchEntity included."""
    kept: list[tuple[str, str]] = []
    page = iam.list_user_tags(UserName=name)
    kept.extend(rules.keep(page["Tags"]))
    while page.get("IsTruncated"):
        page = iam.list_user_tags(UserName=name, Marker=page["Marker"])
        kept.extend(rules.keep(page["Tags"]))
    return tuple(kept)
