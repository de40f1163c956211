"""The background pool: each job in its app's context, failures logged by type, a pool per process."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from flask import Flask, current_app

from core import background
from tests.sms_helpers import CODEWORD


def test_a_job_runs_in_the_context_of_the_app_that_handed_it_over(app: Flask) -> None:
    with app.app_context():
        assert background.call(current_app._get_current_object, timeout=5) is app


def test_what_a_job_raises_is_logged_by_its_type_only(
    app: Flask, capsys: pytest.CaptureFixture[str]
) -> None:
    def fails() -> None:
        raise ValueError(f"the codeword is {CODEWORD}")

    with app.app_context():
        background.run(fails)
    assert background.wait_idle(timeout=5)
    log = capsys.readouterr().err
    assert "background work failed: ValueError" in log
    assert CODEWORD not in log


def test_a_caller_waits_no_longer_than_it_said_and_the_job_goes_on(app: Flask) -> None:
    release = threading.Event()
    finished: list[str] = []

    def slow() -> str:
        release.wait(5)
        finished.append("slow")
        return "done"

    with app.app_context():
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            background.call(slow, timeout=0.1)
        assert time.monotonic() - started < 0.5
    release.set()
    assert background.wait_idle(timeout=5)
    assert finished == ["slow"]


def test_work_left_for_after_the_response_runs_in_the_pool_once_nobody_waits(app: Flask) -> None:
    release = threading.Event()
    done: list[str] = []

    def job() -> None:
        release.wait(5)
        background.after_response(lambda: done.append("after"))
        done.append("job")

    with app.app_context(), pytest.raises(TimeoutError):
        background.call(job, timeout=0.05)
    release.set()
    assert background.wait_idle(timeout=5)
    assert done == ["job", "after"]


def test_a_forked_process_makes_a_pool_of_its_own(app: Flask) -> None:
    """The parent's pool threads do not survive a fork (gunicorn forks its workers)."""
    with app.app_context():
        assert background.call(os.getpid, timeout=5) == os.getpid()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through its exit code
        signal.alarm(10)
        try:
            with app.app_context():
                served = background.call(os.getpid, timeout=5) == os.getpid()
        except BaseException:
            served = False
        os._exit(0 if served else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
