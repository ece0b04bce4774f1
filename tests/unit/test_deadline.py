"""The run's deadline: what a call may still spend, and the process-wide deadline the SDK hooks read."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from keyreport import deadline
from keyreport.deadline import Deadline, azure_request_hook, bounding, current, on_this_thread
from keyreport.errors import DeadlineReached


class _Context:
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options


class _PipelineRequest:
    """The one attribute azure-core's raw_request_hook callers read: request.context.options."""

    def __init__(self, **options: Any) -> None:
        self.context = _Context(options)


def test_timeouts_are_cut_to_what_remains_and_refused_when_nothing_does() -> None:
    left = Deadline.after(2.0)
    connect, read = left.timeouts(10, 60)
    assert 1.5 < connect <= 2.0 and 1.5 < read <= 2.0
    assert Deadline().timeouts(10, 60) == (10, 60)
    with pytest.raises(DeadlineReached, match="POST not started"):
        Deadline.after(0.01).timeouts(10, 60, "POST")


def test_the_closing_deadline_keeps_one_second_of_the_margin() -> None:
    work = Deadline(lambda: 30_000, margin_seconds=20)
    assert work.remaining() == pytest.approx(10)
    assert work.closing().remaining() == pytest.approx(30 - deadline.CLOSING_MARGIN_SECONDS)
    assert work.within(0.5).remaining() == pytest.approx(20)
    assert Deadline(lambda: 30_000, margin_seconds=0.5).closing().remaining() == pytest.approx(29.5)


def test_the_run_deadline_is_process_wide_and_a_thread_may_have_its_own() -> None:
    run, spill = Deadline.after(100), Deadline.after(5)
    seen: dict[str, Deadline] = {}
    with bounding(run):
        with on_this_thread(spill):
            worker = threading.Thread(target=lambda: seen.update(worker=current()))
            worker.start()
            worker.join()
            assert current() is spill
        assert current() is run and seen["worker"] is run  # workers read the run's, not the spiller's
    assert current().remaining() == float("inf")


def test_the_azure_hook_cuts_the_transport_timeouts_and_refuses_late_calls() -> None:
    with bounding(Deadline.after(3)):
        request = _PipelineRequest(read_timeout=300)
        azure_request_hook(request)
        assert request.context.options["connection_timeout"] <= 3
        assert request.context.options["read_timeout"] <= 3
    with bounding(Deadline.after(0.0)), pytest.raises(DeadlineReached):
        azure_request_hook(_PipelineRequest())


def test_an_expired_deadline_is_expired() -> None:
    soon = Deadline.after(0.06)
    assert not soon.expired
    time.sleep(0.07)
    assert soon.expired
