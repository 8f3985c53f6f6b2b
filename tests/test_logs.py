"""Logs stay readable: masked personal data, and one line for a storm of client retries."""

from __future__ import annotations

import io
import logging
import logging.config

import orjson

from leadscore.logs import KafkaRetries, logging_config, mask_email


def logged(records: list[tuple[str, int, str, tuple[object, ...]]]) -> list[dict[str, object]]:
    """What the configured handler writes for `records` (logger, level, msg, args)."""
    config = logging_config("info")
    config["handlers"]["stderr"]["stream"] = stream = io.StringIO()
    logging.config.dictConfig(config)
    try:
        for name, level, msg, args in records:
            logging.getLogger(name).log(level, msg, *args)
    finally:
        logging.config.dictConfig(logging_config("info"))
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


def test_kafka_retry_errors_while_the_broker_is_down_are_one_warning_with_a_count() -> None:
    storm = [("aiokafka", logging.ERROR, "Unable connect to node with id %s: %s",
              (1, "[Errno 111] Connect call failed")),
             ("aiokafka.consumer.fetcher", logging.ERROR, "Failed fetch messages from %s: %s",
              (1, "NodeNotReadyError")),
             ("aiokafka.consumer.group_coordinator", logging.ERROR,
              "Group Coordinator Request failed: %s", ("NodeNotReadyError",))] * 100
    other = ("aiokafka.consumer.group_coordinator", logging.ERROR,
             "LeaveGroup request failed: %s", ("x",))
    lines = logged([*storm, other])
    assert [(line["level"], line["msg"]) for line in lines] == [
        ("warning", "kafka client retrying"), ("error", "LeaveGroup request failed: x")]
    assert lines[0]["retries"] == 1
    assert lines[0]["last_error"] == (
        "Unable connect to node with id 1: [Errno 111] Connect call failed")


def test_emails_are_masked() -> None:
    assert mask_email("ana.lopez@acme.example") == "a***@acme.example"
    assert mask_email("anon:visitor-1") == "ano***"


def test_the_next_report_counts_every_retry_since_the_last() -> None:
    fold = KafkaRetries(every=30.0)
    retry = logging.makeLogRecord({"name": "aiokafka", "levelno": logging.ERROR,
                                   "msg": "Unable to update metadata from %s", "args": ([1],)})
    passed = [fold.filter(logging.makeLogRecord(vars(retry))) for _ in range(250)]
    assert passed.count(True) == 1
    fold.next_report = 0.0  # the interval is over
    report = logging.makeLogRecord(vars(retry))
    assert fold.filter(report)
    assert (report.levelname, report.__dict__["retries"]) == ("WARNING", 250)
