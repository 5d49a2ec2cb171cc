"""hub.rejections.RejectionLog: every rejection counted by reason; one log line per device and
reason per interval, naming how many were left out."""

from __future__ import annotations

import logging

import pytest

from hub import metrics
from hub.clock import ManualClock
from hub.messages import Rejection
from hub.rejections import RejectionLog


def rejected(kind: str, reason: str) -> float:
    return float(metrics.messages_rejected.labels(kind=kind, reason=reason)._value.get())


def test_every_rejection_is_counted_but_logged_once_per_device_and_reason_per_interval(
        caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock(1_000.0)
    log = RejectionLog(clock.monotonic, every_s=60)
    before = rejected("status", "bad_value")
    with caplog.at_level(logging.WARNING, logger="hub.rejections"):
        for _ in range(5):
            log.reject(Rejection("status", "bad_value", "cam-7", "'maybe'"))
        log.reject(Rejection("status", "bad_value", "cam-8"))  # another device: its own line
        assert [r.getMessage().split(":")[0] for r in caplog.records] == [
            "rejected status from cam-7", "rejected status from cam-8"]
        clock.advance(61)
        log.reject(Rejection("status", "bad_value", "cam-7"))
    assert rejected("status", "bad_value") - before == 7
    assert "(4 more since the last line)" in caplog.records[-1].getMessage()


def test_a_field_rejection_counts_in_the_field_counter_not_the_message_counter() -> None:
    log = RejectionLog()
    fields_before = float(metrics.fields_rejected.labels(field="fps", reason="wrong_type")._value.get())
    messages_before = rejected("heartbeat", "wrong_type")
    log.reject(Rejection("heartbeat", "wrong_type", "cam-1", field="fps"))
    assert float(metrics.fields_rejected.labels(field="fps", reason="wrong_type")._value.get()) - fields_before == 1
    assert rejected("heartbeat", "wrong_type") == messages_before


def test_count_alone_writes_no_log_line(caplog: pytest.LogCaptureFixture) -> None:
    before = rejected("snapshot", "superseded")
    with caplog.at_level(logging.DEBUG, logger="hub.rejections"):
        RejectionLog().count(Rejection("snapshot", "superseded", "cam-1"))
    assert rejected("snapshot", "superseded") - before == 1
    assert caplog.records == []
