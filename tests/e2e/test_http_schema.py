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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from litestar import Litestar
from litestar.testing import TestClient
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
from interfaces.http.payments import signed_headers
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
SUBJECTS = {
    Role.CUSTOMER: "fuzzing-customer",
    Role.KITCHEN: "fuzzing-kitchen",
    Role.OPERATOR: "fuzzing-operator",
    Role.PAYMENT: "fuzzing-processor",
    Role.SUBSYSTEM: "fuzzing-subsystem",
}
"""Who each role's token names; the fridge device's names the world's fridge."""


@dataclass(frozen=True)
class Fuzzed:
    settings: Settings
    app: Litestar
    fridge_id: str


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    """The app over a store of its own, with a worker per read model for the whole module (as
    `farmacy run` has them) and ready before the first call; all closed after the last.
    The operations come from `the_contract()`; the calls go to this app."""
    settings = Settings(store="sqlite", data_dir=tmp_path_factory.mktemp("fuzz"))
    side = build_write_side(settings, clock=FakeClock())
    close_store = side.close
    # schemathesis runs the app's lifespan around every call; keep the store open throughout
    side.close = lambda: None  # type: ignore[method-assign]
    read = ReadSide(Root(settings).api_read_models())
    stop = threading.Event()
    errors: list[str] = []
    workers = threading.Thread(
        target=lambda: errors.extend(
            Root(settings, store=side.store).run("worker", stop, names=sorted(PROJECTIONS))
        ),
        name="fuzz-workers",
        daemon=True,
    )
    try:
        world = make_world(side)
        app = create_app(side, settings, read)
        workers.start()
        deadline = time.monotonic() + 60
        while reasons := unready(statuses(side.store, read)):  # until /readyz would say ready
            assert time.monotonic() < deadline and not errors, (reasons, errors)
            time.sleep(0.05)
        yield Fuzzed(settings, app, world.fridge_id)
    finally:
        stop.set()
        if workers.is_alive():
            workers.join(timeout=30)
        read.close()
        close_store()
    assert not workers.is_alive(), "the workers did not stop"
    assert not errors, errors


def the_contract() -> dict[str, Any]:
    """The app's OpenAPI document as it serves it, read from an app over a store of its own
    that is closed (by the app's lifespan) and deleted before the tests are even collected:
    collection needs the operations, and nothing opened here outlives this function."""
    with tempfile.TemporaryDirectory(prefix="farmacy-contract-") as where:
        settings = Settings(store="sqlite", data_dir=Path(where))
        app = create_app(build_write_side(settings, clock=FakeClock()), settings)
        with TestClient(app) as client:
            document: dict[str, Any] = client.get("/schema/openapi.json").json()
    return document


schema = schemathesis.openapi.from_dict(the_contract(), config=CONFIG)


def credentials(fuzzed: Fuzzed, role: Role, case: Any) -> dict[str, str]:
    """A bearer token for `role`; the payment processor signs the body instead."""
    secret = fuzzed.settings.secret
    if role is Role.PAYMENT and case.path == "/payments/webhook":
        return signed_headers(fuzzed.settings.payment_webhook_secret, sent(case.body))
    subject = fuzzed.fridge_id if role is Role.FRIDGE else SUBJECTS[role]
    return {"Authorization": f"Bearer {issue_token(secret, role, subject)}"}


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
def test_every_operation_keeps_the_contract(case: Any, role: Role, fuzzed: Fuzzed) -> None:
    headers = credentials(fuzzed, role, case)
    case.call_and_validate(app=fuzzed.app, headers=headers, checks=CHECKS)
