"""A worker and the fulfilment process, started as an operator starts them with a metrics port,
show on it what they do: lag falling to 0 after events arrive, batches and payment calls
counted. Real processes on SQLite; the payment processor is a few lines of HTTP in this test."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ops.demo import demo_order, seed_demo
from ops.root import Root
from ops.settings import Settings
from tests.loopback import address, serving

FARMACY = [sys.executable, "-m", "interfaces.cli"]
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def scrape(port: int) -> Samples:
    """Every sample the process serves, by name and labels; {} while it does not answer."""
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except httpx.TransportError:
        return {}
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def wait_for(
    port: int, process: subprocess.Popen[bytes], holds: Callable[[Samples], bool], what: str
) -> Samples:
    deadline = time.monotonic() + 60
    samples: Samples = {}
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the process ended ({process.returncode}) before {what}"
        samples = scrape(port)
        if samples and holds(samples):
            return samples
        time.sleep(0.1)  # a poll interval, not a wait for a race: the condition decides
    pytest.fail(f"not within 60 s: {what}; last scrape: {samples}")


class Processor(BaseHTTPRequestHandler):
    """A payment processor that answers every authorisation 'pending' (the webhook would
    follow; nothing here needs it)."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps({"status": "pending"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def processor() -> Iterator[str]:
    with serving(Processor) as server:
        yield f"http://{address(server)}"


@contextmanager
def started(args: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen([*FARMACY, *args], env=env, stdout=subprocess.DEVNULL)
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_a_worker_and_fulfilment_show_their_lag_and_their_work_on_their_metrics_ports(
    tmp_path: Path,
) -> None:
    side = Root(Settings(store="sqlite", data_dir=tmp_path)).write_side()  # type: ignore[arg-type]
    seed_demo(side)
    worker_port, fulfil_port = free_port(), free_port()
    with processor() as payments_url:
        env = {
            **os.environ,
            "FARMACY_DATA_DIR": str(tmp_path),
            "FARMACY_LOG_FORMAT": "json",
            "FARMACY_PAYMENTS_URL": payments_url,
            "FARMACY_METRICS_PORT": str(fulfil_port),  # the setting, for one of them
            "FARMACY_METRICS_HOST": "127.0.0.1",
        }
        worker_args = ["worker", "--projection", "orders", "--metrics-port", str(worker_port)]
        with started(worker_args, env) as worker, started(["fulfil"], env) as fulfil:
            head = side.store.position()

            def caught_up(at: int) -> Callable[[Samples], bool]:
                return lambda s: (
                    value(s, "farmacy_projection_position", projection="orders", shard="0/1") >= at
                    and value(s, "farmacy_projection_lag_events", projection="orders", shard="0/1")
                    == 0
                )

            # The seed's events came in batches, counted; a batch is counted just after its
            # checkpoint commits, so the wait is for both.
            before = wait_for(
                worker_port,
                worker,
                lambda s: (
                    caught_up(head)(s)
                    and value(s, "farmacy_projection_batch_events_count", projection="orders") >= 1
                ),
                "the worker caught up and counted the seed's batches",
            )
            batches = value(before, "farmacy_projection_batch_events_count", projection="orders")

            _, fridge_id, meal_id = demo_order()
            for n in range(3):
                side.ordering.place("alice", f"metrics-{n}", fridge_id, {meal_id: 1})
            head = side.store.position()
            # A batch is counted just after its checkpoint commits: wait for both.
            after = wait_for(
                worker_port,
                worker,
                lambda s: (
                    caught_up(head)(s)
                    and value(s, "farmacy_projection_batch_events_count", projection="orders")
                    > batches
                ),
                "the worker applied the orders and counted their batch",
            )
            assert value(after, "farmacy_projection_dead_letters_total", projection="orders") == 0

            wait_for(
                fulfil_port,
                fulfil,
                lambda s: (
                    value(s, "farmacy_payment_calls_total", operation="authorise", outcome="ok")
                    == 3
                    and value(s, "farmacy_fulfilment_position") >= head
                    and value(s, "farmacy_fulfilment_lag_events") == 0
                ),
                "fulfilment asked for three authorisations and caught up",
            )
    side.close()


def families(port: int) -> set[str]:
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except httpx.TransportError:
        return set()
    return {family.name for family in text_string_to_metric_families(text)}


def test_the_poller_and_the_relay_serve_their_metrics_when_given_a_port(tmp_path: Path) -> None:
    side = Root(Settings(store="sqlite", data_dir=tmp_path)).write_side()  # type: ignore[arg-type]
    seed_demo(side)
    side.close()
    env = {
        **os.environ,
        "FARMACY_DATA_DIR": str(tmp_path),
        "FARMACY_LOG_FORMAT": "json",
        "FARMACY_METRICS_HOST": "127.0.0.1",
    }
    env.pop("FARMACY_NATS_URL", None)  # the relay idles, saying why, and still serves metrics
    poller_port, relay_port = free_port(), free_port()
    with (
        started(["fridges", "poll", "--metrics-port", str(poller_port)], env) as poller,
        started(["relay", "--metrics-port", str(relay_port)], env) as relay,
    ):
        stale = wait_for(
            poller_port,
            poller,
            lambda s: ("farmacy_fridges_stale", ()) in s,
            "the poller counts its stale fridges",
        )
        assert stale["farmacy_fridges_stale", ()] == 0  # the demo's fridges just reported
        wait_for(relay_port, relay, lambda s: True, "the relay serves metrics")
        assert "farmacy_relay_published" in families(relay_port)


def test_a_metrics_port_already_taken_ends_the_command_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [*FARMACY, "expiry", "--metrics-port", str(port)],
            env={
                **os.environ,
                "FARMACY_DATA_DIR": str(tmp_path),
                "FARMACY_METRICS_HOST": "127.0.0.1",
            },
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"farmacy: metrics port {port}"), line
