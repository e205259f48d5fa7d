"""Outside the demo, money needs its settings named: a missing processor or webhook secret
stops the process in one line naming the setting, before anything starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVER_STORE = {
    "FARMACY_STORE": "postgres",
    "FARMACY_POSTGRES_DSN": "postgresql://postgres@127.0.0.1:1/none",  # never reached
    "FARMACY_SECRET": "s" * 40,
    "FARMACY_LOG_FORMAT": "json",
}


def farmacy(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FARMACY_")}
    return subprocess.run(
        [sys.executable, "-m", "interfaces.cli", *args],
        cwd=ROOT,
        env={**clean, **SERVER_STORE, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_fulfilment_without_a_payment_processor_refuses_to_start() -> None:
    ran = farmacy("fulfil")
    assert ran.returncode == 2
    assert ran.stderr.strip().splitlines() == [
        "farmacy: FARMACY_PAYMENTS_URL is not set: fulfilment asks a payment processor for "
        "every order (`farmacy payments simulate` runs a simulated one)"
    ]


def test_an_api_without_a_strong_webhook_secret_refuses_to_start() -> None:
    for secret in ("", "whsec_c2hvcnQ="):
        ran = farmacy("api", FARMACY_PAYMENT_WEBHOOK_SECRET=secret)
        assert ran.returncode == 2, ran.stderr
        (line,) = ran.stderr.strip().splitlines()
        assert line.startswith("farmacy: FARMACY_PAYMENT_WEBHOOK_SECRET ")
