"""The console of `keybuzz` commands: what it hides, and what it never hides."""

from __future__ import annotations

import logging

from keybuzz.cli import hide_routine_jobs


def _queue_line(level: int, action: str, task_kwargs: dict[str, object]) -> logging.LogRecord:
    """A line as procrastinate's worker logs it: the job's context in the record's extras."""
    record = logging.LogRecord("procrastinate.worker", level, __file__, 1, "Job ...", None, None)
    record.__dict__.update(action=action, job={"task_kwargs": task_kwargs})
    return record


def test_a_periodic_job_that_went_well_is_not_narrated() -> None:
    assert not hide_routine_jobs(_queue_line(logging.INFO, "job_success", {"timestamp": 1}))


def test_a_periodic_job_that_failed_still_shows() -> None:
    assert hide_routine_jobs(_queue_line(logging.ERROR, "job_error", {"timestamp": 1}))


def test_a_backfill_job_still_shows() -> None:
    assert hide_routine_jobs(_queue_line(logging.INFO, "start_job", {"backfill_id": "b-1"}))
