"""Schemathesis drives every operation from the app's own OpenAPI document, as each role.

The examples, coverage and fuzzing phases all run, and every answer must be no server error
and conform to the document: its status, content type, headers and body. No 503 is waved
through: the read models' workers run throughout, so the app is ready, every read model is
built, and a `min_position` nobody was handed is a 422, not a wait.

`FARMACY_FUZZ_EXAMPLES` sets the fuzzing phase's examples per operation and role: the
default keeps `make test` within its budget; `make fuzz` runs the long, documented pass.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.core import NotSet
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from interfaces.http.app import create_app
from interfaces.http.auth import Role, issue_token
from interfaces.http.operations import statuses, unready
from interfaces.http.payments import SIGNATURE_HEADER, sign
from interfaces.http.reading import ReadSide
from ops.root import Root, build_write_side
from ops.settings import Settings
from projections.models import PROJECTIONS
from tests.conftest import FakeClock
from tests.integration.world import make_world

EXAMPLES = int(os.environ.get("FARMACY_FUZZ_EXAMPLES", "15"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

SETTINGS = Settings(store="sqlite", data_dir=Path(tempfile.mkdtemp(prefix="farmacy-fuzz-")))
SIDE = build_write_side(SETTINGS, clock=FakeClock())
WORLD = make_world(SIDE)
# schemathesis runs the app's lifespan around every call; keep the store open throughout
SIDE.close = lambda: None  # type: ignore[method-assign]
READ = ReadSide(Root(SETTINGS).api_read_models())
APP = create_app(SIDE, SETTINGS, READ)

CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": 11,
        "generation": {"max-examples": EXAMPLES, "database": "none"},
        "phases": {
            "examples": {"enabled": True},
            "coverage": {"enabled": True},
            "fuzzing": {"enabled": True},
            "stateful": {"enabled": False},
        },
    }
)
schema = schemathesis.openapi.from_asgi("/schema/openapi.json", APP, config=CONFIG)

SUBJECTS = {
    Role.CUSTOMER: "fuzzing-customer",
    Role.KITCHEN: "fuzzing-kitchen",
    Role.FRIDGE: WORLD.fridge_id,
    Role.OPERATOR: "fuzzing-operator",
    Role.PAYMENT: "fuzzing-processor",
    Role.SUBSYSTEM: "fuzzing-subsystem",
}


@pytest.fixture(scope="module", autouse=True)
def workers() -> Iterator[None]:
    """A worker per read model for the whole module, as `farmacy run` has them."""
    stop = threading.Event()
    errors: list[str] = []
    thread = threading.Thread(
        target=lambda: errors.extend(
            Root(SETTINGS, store=SIDE.store).run("worker", stop, names=sorted(PROJECTIONS))
        ),
        name="fuzz-workers",
        daemon=True,
    )
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while reasons := unready(statuses(SIDE.store, READ)):  # until /readyz would say ready
            assert time.monotonic() < deadline and not errors, (reasons, errors)
            time.sleep(0.05)
        yield
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not errors, errors


def credentials(role: Role, case: Any) -> dict[str, str]:
    """A bearer token for `role`; the payment processor signs the body instead."""
    if role is Role.PAYMENT and case.path == "/payments/webhook":
        return {SIGNATURE_HEADER: sign(SETTINGS.secret, sent(case.body))}
    return {"Authorization": f"Bearer {issue_token(SETTINGS.secret, role, SUBJECTS[role])}"}


def sent(body: Any) -> bytes:
    """The bytes schemathesis sends for a JSON body (its `serialize_json`, then requests)."""
    if isinstance(body, NotSet):
        return b""
    if isinstance(body, bytes):
        return body
    if body is None:
        return b"null"
    return json.dumps(body).encode()


@pytest.mark.parametrize("role", list(Role))
@schema.parametrize()
def test_every_operation_keeps_the_contract(case: Any, role: Role) -> None:
    case.call_and_validate(headers=credentials(role, case), checks=CHECKS)
