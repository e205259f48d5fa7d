"""What `farmacy run` starts: one API process on the port, or N on loopback ports of their
own behind the load balancer, which listens on the port instead."""

from __future__ import annotations

import pytest

from ops.balancer import CADDYFILE
from ops.supervisor import child_env, farmacy_children


def test_one_api_process_listens_on_the_port_itself() -> None:
    children = farmacy_children(["venue_menu"], "127.0.0.1", 8123)
    apis = [c for c in children if c.name.startswith("api")]
    assert [c.args for c in apis] == [
        ["api", "--host", "127.0.0.1", "--port", "8123", "--workers", "1"]
    ]
    assert not [c for c in children if c.name == "balancer"]


def test_more_api_processes_stand_behind_the_balancer_on_the_port() -> None:
    children = farmacy_children(["venue_menu"], "0.0.0.0", 8123, api_processes=3)
    apis = [c for c in children if c.name.startswith("api:")]
    ports = [c.args[c.args.index("--port") + 1] for c in apis]
    assert len(apis) == 3 and len(set(ports)) == 3 and "8123" not in ports
    assert all(c.args[c.args.index("--host") + 1] == "127.0.0.1" for c in apis)
    [balancer] = [c for c in children if c.name == "balancer"]
    assert balancer.program and balancer.program[0].endswith("caddy")
    assert str(CADDYFILE) in balancer.args
    assert balancer.extra_env["FARMACY_BALANCER_PORT"] == "8123"
    assert balancer.extra_env["FARMACY_BALANCER_HOST"] == "0.0.0.0"
    assert balancer.extra_env["FARMACY_API_UPSTREAMS"].split() == [
        f"127.0.0.1:{port}" for port in ports
    ]


def test_children_serve_metrics_on_ports_of_their_own_only_when_asked() -> None:
    quiet = farmacy_children(["orders", "venue_menu"], "127.0.0.1", 8123)
    assert not [c for c in quiet if "--metrics-port" in c.args]

    children = farmacy_children(["orders", "venue_menu"], "127.0.0.1", 8123, metrics_port_base=9200)
    served = {
        c.name: int(c.args[c.args.index("--metrics-port") + 1])
        for c in children
        if "--metrics-port" in c.args
    }
    not_api = {c.name for c in children if not c.name.startswith("api")}
    assert set(served) == not_api  # the API's metrics are on its own port, at /metrics
    assert {"worker:orders", "worker:venue_menu", "fulfilment", "relay"} <= set(served)
    assert sorted(served.values()) == list(range(9200, 9200 + len(served)))


def test_a_metrics_port_in_the_environment_is_not_handed_to_every_child(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FARMACY_METRICS_PORT", "9100")
    assert "FARMACY_METRICS_PORT" not in child_env()
