"""The load balancer as configured in ops/deploy/Caddyfile, started for real: each fridge's
orders reach one backend, everything else reaches every backend, and adding a backend moves
only the fridges the new one wins (rendezvous hashing)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from http.server import BaseHTTPRequestHandler

import httpx

from ops.balancer import FRIDGE_HEADER, Balancer
from tests.e2e.test_http_processes import free_port
from tests.loopback import address, serving

FRIDGES = [f"fridge-{n}" for n in range(90)]


class Echo(BaseHTTPRequestHandler):
    """A backend that says who it is, and which fridge the balancer hashed on."""

    def answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.send_response(200)
        self.send_header("X-Backend", self.server.name)  # type: ignore[attr-defined]
        self.send_header("X-Hashed-On", self.headers.get(FRIDGE_HEADER) or "")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        self.answer()

    def do_POST(self) -> None:
        self.answer()

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def backend(name: str) -> Iterator[str]:
    with serving(Echo) as server:
        server.name = name  # type: ignore[attr-defined]
        yield address(server)


CLIENT = httpx.Client(timeout=10.0)  # one: building a client costs more than a request


def served_by(url: str, path: str, method: str = "POST") -> httpx.Response:
    answer = CLIENT.request(method, f"{url}{path}", json={"lines": []})
    assert answer.status_code == 200, answer.text
    return answer


def routes(url: str) -> dict[str, str]:
    """Which backend each fridge's orders reach (asking twice: always the same one)."""
    found = {}
    for fridge in FRIDGES:
        first, second = (served_by(url, f"/fridges/{fridge}/orders?n={n}") for n in range(2))
        assert first.headers["X-Hashed-On"] == fridge  # the fridge alone, not the query
        assert first.headers["X-Backend"] == second.headers["X-Backend"], fridge
        found[fridge] = first.headers["X-Backend"]
    return found


def test_orders_stick_to_a_backend_by_fridge_and_the_rest_is_spread() -> None:
    with ExitStack() as stack:
        backends = [stack.enter_context(backend(name)) for name in ("a", "b")]
        balancer = stack.enter_context(Balancer(backends, free_port()))
        by_fridge = routes(balancer.url)
        assert set(by_fridge.values()) == {"a", "b"}  # the fridges are shared out
        menus = Counter(
            served_by(balancer.url, "/venues/gym/menu", "GET").headers["X-Backend"]
            for _ in range(6)
        )
        assert menus == {"a": 3, "b": 3}, menus  # round robin
        orders = Counter(served_by(balancer.url, "/orders").headers["X-Backend"] for _ in range(4))
        assert set(orders) == {"a", "b"}, orders  # the fridge is in the body: spread


def test_adding_a_backend_moves_only_the_fridges_it_wins() -> None:
    with ExitStack() as stack:
        backends = [stack.enter_context(backend(name)) for name in ("a", "b", "c")]
        with Balancer(backends[:2], free_port()) as two:
            before = routes(two.url)
        with Balancer(backends, free_port()) as three:
            after = routes(three.url)
    moved = {fridge for fridge in FRIDGES if before[fridge] != after[fridge]}
    assert {after[fridge] for fridge in moved} == {"c"}  # none moved between a and b
    # about a third (30 of 90 expected; these bounds are over 3 standard deviations away)
    assert len(FRIDGES) // 6 <= len(moved) <= len(FRIDGES) // 2, len(moved)
