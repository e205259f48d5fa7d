"""A log line as a log shipper reads it: one JSON object per line, secrets redacted."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from ops.logging import configure_logging


class Where:
    """A value JSON has no type for: logged as its text."""

    def __str__(self) -> str:
        return "shelf 3"

    __repr__ = __str__


@pytest.fixture
def json_lines(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """Logging configured as in production (JSON), writing here; the old config afterwards."""
    written = io.StringIO()
    monkeypatch.setattr("sys.stderr", written)
    before = structlog.get_config()
    configure_logging("INFO", "json")
    try:
        yield written
    finally:
        structlog.configure(**before)


def lines_of(written: io.StringIO) -> list[dict[str, Any]]:
    text = written.getvalue()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_a_line_is_one_json_object_with_level_time_and_fields(json_lines: io.StringIO) -> None:
    structlog.get_logger("test").info(
        "request", method="GET", route="/orders/{order_id}", status=200, duration_ms=1.25
    )
    [line] = lines_of(json_lines)
    assert line["event"] == "request" and line["level"] == "info"
    assert line["timestamp"].endswith("Z")
    assert (line["method"], line["route"], line["status"], line["duration_ms"]) == (
        "GET",
        "/orders/{order_id}",
        200,
        1.25,
    )


def test_secrets_are_redacted_whoever_logs_them(json_lines: io.StringIO) -> None:
    structlog.get_logger("test").warning(
        "odd", token="abc.def", Authorization="Bearer x", card_number="4111", order_id="o-1"
    )
    [line] = lines_of(json_lines)
    assert line["token"] == line["Authorization"] == line["card_number"] == "[redacted]"
    assert line["order_id"] == "o-1"
    assert "abc.def" not in json_lines.getvalue() and "4111" not in json_lines.getvalue()


def test_values_json_has_no_type_for_are_written_as_text(json_lines: io.StringIO) -> None:
    structlog.get_logger("test").info("stocked", where=Where(), ids=["a", "b"], count=None)
    [line] = lines_of(json_lines)
    assert (line["where"], line["ids"], line["count"]) == ("shelf 3", ["a", "b"], None)


def test_an_exception_is_written_as_text(json_lines: io.StringIO) -> None:
    try:
        raise ValueError("the shelf is full")
    except ValueError:
        structlog.get_logger("test").exception("failed")
    [line] = lines_of(json_lines)
    assert line["level"] == "error" and "the shelf is full" in line["exception"]


def test_below_the_level_nothing_is_written(json_lines: io.StringIO) -> None:
    structlog.get_logger("test").debug("chatter")
    assert json_lines.getvalue() == ""


def test_text_that_is_not_unicode_is_still_written(json_lines: io.StringIO) -> None:
    name = b"fridge-\xff".decode(errors="surrogateescape")  # as os and sys hand out bad bytes
    structlog.get_logger("test").info("named", name=name, note="grüße")
    [line] = lines_of(json_lines)
    assert line["name"] == name and line["note"] == "grüße"
