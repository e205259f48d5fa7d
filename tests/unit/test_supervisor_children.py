"""What `farmacy run` starts: one API process on the port, or N on loopback ports of their
own behind the load balancer, which listens on the port instead."""

from __future__ import annotations

from ops.balancer import CADDYFILE
from ops.supervisor import farmacy_children


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
