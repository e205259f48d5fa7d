"""One format per process: the standard library's records (libraries, the ASGI server) are
written as structlog's lines are, and an unknown format is refused naming the known ones."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator

import pytest
import structlog

from ops.logging import StderrHandler, UnknownLogFormat, configure_logging


@pytest.fixture
def written_lines(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[[], list[str]]]:
    """Logging configured by each test, writing to the captured stderr; the old config after."""
    before = structlog.get_config()
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        yield lambda: capsys.readouterr().err.splitlines()
    finally:
        structlog.configure(**before)
        root.handlers[:] = handlers
        root.setLevel(level)


def test_a_library_s_record_is_a_json_line_like_ours(
    written_lines: Callable[[], list[str]],
) -> None:
    configure_logging("INFO", "json")
    logging.getLogger("farmacy.library").warning("pool %s is slow", "events")
    structlog.get_logger("farmacy").info("request", status=200)
    library, ours = (json.loads(line) for line in written_lines())
    assert library["event"] == "pool events is slow" and library["level"] == "warning"
    assert ours["event"] == "request" and "timestamp" in library and "timestamp" in ours


def test_configuring_twice_writes_each_record_once(written_lines: Callable[[], list[str]]) -> None:
    configure_logging("INFO", "json")
    configure_logging("INFO", "json")
    logging.getLogger("farmacy.server").warning("once")
    assert len(written_lines()) == 1
    assert sum(isinstance(h, StderrHandler) for h in logging.getLogger().handlers) == 1


def test_an_unknown_format_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(UnknownLogFormat, match="'xml': choose one of console, json"):
        configure_logging("INFO", "xml")
