"""The city benchmark's own parts (ops/bench/city.py, issue 18): what wrk's Lua script sends
and reports, how its report is read, and how CPU is charged to each side from /proc.

No timing is asserted: the benchmark's figures are read by people, not by tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from ops.bench import city, cpu
from tests.loopback import address, serving

WRK_OUTPUT = """\
Running 15s test @ http://127.0.0.1:8000
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    33.10ms   20.01ms 440.10ms   90.00%
  27731 requests in 15.00s, 60.21MB read
  Non-2xx or 3xx responses: 12
Requests/sec:   1848.73
Transfer/sec:      4.01MB
CITYBENCH {"requests":27731,"seconds":15.000412,"statuses":{"200":25200,"201":2519,"409":12},\
"errors":{"connect":0,"read":1,"write":0,"status":12,"timeout":2},\
"latency_us":{"p50":31460,"p90":52000,"p99":440100,"p999":501000,"max":512345,"mean":33100.5}}
"""


def test_the_report_line_of_wrk_is_read_into_counts_and_milliseconds() -> None:
    load = city.parse_wrk(WRK_OUTPUT)

    assert load.requests == 27731
    assert load.statuses == {200: 25200, 201: 2519, 409: 12}
    assert load.non_2xx == 12
    assert load.socket_errors == 3  # a read error and two timeouts; wrk's "status" is non-2xx
    assert load.ms("p50") == 31.46
    assert load.ms("p99") == 440.1
    assert round(load.rate) == 1849


def test_output_without_the_report_line_is_an_error_that_shows_it() -> None:
    with pytest.raises(ValueError, match="no CITYBENCH line") as raised:
        city.parse_wrk("unable to connect to 127.0.0.1:8000 Connection refused\n")
    assert "Connection refused" in str(raised.value)


class Recorder(BaseHTTPRequestHandler):
    """Answers like both sides would: 200 to a menu, 201 to an order, 409 at fridge-sold."""

    protocol_version = "HTTP/1.1"  # keep-alive, as wrk expects
    seen: list[tuple[str, str, dict[str, str], bytes]] = []
    lock = threading.Lock()

    def answer(self, status: int) -> None:
        body = b"{}"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        with self.lock:
            self.seen.append(("GET", self.path, dict(self.headers), b""))
        self.answer(200)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with self.lock:
            self.seen.append(("POST", self.path, dict(self.headers), body))
        self.answer(409 if "fridge-sold" in self.path else 201)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.mark.skipif(
    shutil.which("wrk") is None, reason=f"wrk is not installed ({city.INSTALL_WRK})"
)
def test_the_lua_script_sends_the_mix_and_reports_what_it_was_answered(tmp_path: Path) -> None:
    Recorder.seen = []
    tokens = [f"token-{n}" for n in range(32)]
    traffic = city.Traffic(
        mode="mixed",
        tokens=city.write_lines(tmp_path / "tokens", tokens),
        venues=city.write_lines(tmp_path / "venues", ["venue-a", "venue-b"]),
        fridges=city.write_lines(tmp_path / "fridges", ["fridge-ok", "fridge-sold"]),
        meals=city.write_lines(tmp_path / "meals", ["meal-x", "meal-y"]),
        route="fridge",
        reads=3,
        run="test",
    )
    every_post: list[tuple[str, str, dict[str, str], bytes]] = []
    for _ in range(5):  # a loaded machine may answer only a few orders in a second
        Recorder.seen = []
        with serving(Recorder) as server:
            load = city.run_wrk(f"http://{address(server)}", traffic, 1, connections=2)
        every_post += [seen for seen in Recorder.seen if seen[0] == "POST"]
        if len(every_post) >= 20:  # enough to see every fridge and meal picked at random
            break

    gets = [seen for seen in Recorder.seen if seen[0] == "GET"]
    posts = [seen for seen in Recorder.seen if seen[0] == "POST"]
    assert {path for _, path, _, _ in gets} <= {"/venues/venue-a/menu", "/venues/venue-b/menu"}
    assert {path for _, path, _, _ in every_post} == {
        "/fridges/fridge-ok/orders",
        "/fridges/fridge-sold/orders",
    }
    meals = {json.loads(body)["lines"][0]["meal_id"] for *_, body in every_post}
    assert meals == {"meal-x", "meal-y"}
    assert all(json.loads(body)["lines"][0]["quantity"] == 1 for *_, body in posts)
    assert {headers["Authorization"] for _, _, headers, _ in Recorder.seen} <= {
        f"Bearer {token}" for token in tokens
    }
    keys = [headers["Idempotency-Key"] for _, _, headers, _ in posts]
    assert len(set(keys)) == len(keys)  # never a key twice
    assert all(key.startswith("test-") for key in keys)
    # three reads, then an order, in each of wrk's two threads
    assert abs(len(gets) - 3 * len(posts)) <= 8

    # the report counts what the server answered (less what was in flight when wrk stopped)
    answered = Counter(
        409 if "fridge-sold" in path else 201 if method == "POST" else 200
        for method, path, _, _ in Recorder.seen
    )
    assert sum(load.statuses.values()) == load.requests > 0
    for status in (200, 201, 409):
        assert 0 < load.statuses[status] <= answered[status] <= load.statuses[status] + 2
    assert load.non_2xx == load.statuses[409] == load.errors["status"]
    assert load.socket_errors == 0
    assert 0 < load.ms("p50") <= load.ms("p99")


# ---- CPU from /proc --------------------------------------------------------------------------


def fake_process(
    proc: Path, pid: int, comm: str, ppid: int, utime: int, stime: int, cmdline: str
) -> None:
    """A /proc/PID as the kernel writes it: stat's fields 14 and 15 are utime and stime."""
    where = proc / str(pid)
    where.mkdir(parents=True, exist_ok=True)
    rest = ["S", str(ppid), *["0"] * 9, str(utime), str(stime), *["0"] * 7]
    (where / "stat").write_text(f"{pid} ({comm}) {' '.join(rest)}\n")
    (where / "comm").write_text(f"{comm}\n")
    (where / "cmdline").write_bytes(cmdline.replace(" ", "\0").encode() + b"\0")


def postgres_machine(proc: Path, tick: int = 0) -> None:
    """An API server with one child, and a PostgreSQL server with backends of two databases."""
    fake_process(proc, 1, "init", 0, 0, 0, "/sbin/init")
    fake_process(proc, 100, "python", 1, 50 + tick, 10, "python -c api_command")
    fake_process(proc, 101, "python", 100, 200 + 3 * tick, 20 + tick, "python -c spawn_main")
    fake_process(proc, 200, "postgres", 1, 5, 5, "/usr/lib/postgresql/15/bin/postgres -D main")
    fake_process(proc, 203, "postgres", 200, 7 + tick, 1, "postgres: 15/main: walwriter")
    fake_process(
        proc,
        201,
        "postgres",
        200,
        40 + 2 * tick,
        4,
        "postgres: 15/main: postgres farmacy_x 127.0.0.1(5000) idle",
    )
    fake_process(
        proc,
        202,
        "postgres",
        200,
        90 + 9 * tick,
        9,
        "postgres: 15/main: postgres other_db 127.0.0.1(5001) idle",
    )


def test_a_side_is_charged_its_processes_its_database_and_the_shared_auxiliaries(
    tmp_path: Path,
) -> None:
    postgres_machine(tmp_path)

    assert sorted(cpu.tree(100, tmp_path)) == [100, 101]
    found = cpu.postgres_processes("farmacy_x", tmp_path)
    assert sorted(found["backends"]) == [201]  # not other_db's backend 202
    assert sorted(found["auxiliaries"]) == [200, 203]


def test_cpu_between_two_samples_counts_new_processes_whole_and_ignores_the_gone(
    tmp_path: Path,
) -> None:
    postgres_machine(tmp_path)
    groups = {"api": [100, 101], "postgres": [201, 203]}
    before = cpu.Sample.take(groups, tmp_path)

    postgres_machine(tmp_path, tick=10)  # api: +10 +30 +10; backend +20; walwriter +10
    fake_process(tmp_path, 204, "postgres", 200, 6, 2, "postgres: 15/main: postgres farmacy_x x")
    spent = cpu.Sample.take({"api": [100, 101], "postgres": [201, 203, 204, 999]}, tmp_path)

    assert spent.since(before) == {"api": 50 / cpu.TICKS, "postgres": (20 + 10 + 8) / cpu.TICKS}


def test_this_machines_proc_is_read_the_same_way() -> None:
    mine = os.getpid()
    assert mine in cpu.tree(os.getppid())
    assert cpu.ticks(mine) is not None
    assert cpu.ticks(2**22 + 12345) is None  # no such process


# ---- the command ---------------------------------------------------------------------------


def test_help_names_the_options() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ops.bench.city", "--help"],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(city.__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr
    for option in ("--seconds", "--connections", "--rows", "--runs", "--store", "--balancer"):
        assert option in done.stdout


def test_a_balancer_that_this_tree_lacks_is_refused_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(city, "balancer_class", lambda: None)
    with pytest.raises(SystemExit) as stopped:
        city.options(["--routed"])
    assert stopped.value.code == 2
    assert "needs ops.balancer.Balancer" in capsys.readouterr().err


def test_routed_orders_go_to_the_fridges_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(city, "balancer_class", lambda: object)
    assert city.options(["--routed"]).order_route == "fridge"
    assert city.options([]).order_route == "orders"
    with pytest.raises(SystemExit):
        city.options(["--balancer", "routed", "--order-route", "orders"])


def test_a_balancer_is_given_every_backend_and_its_url_is_where_requests_go(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[tuple[list[str], int]] = []

    class Balancer:  # the shape ops.balancer.Balancer promises (issue 18 part 3)
        def __init__(self, backends: list[str], port: int) -> None:
            made.append((backends, port))
            self.url = f"http://127.0.0.1:{port}/"

        def __enter__(self) -> Balancer:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

    monkeypatch.setattr(city, "balancer_class", lambda: Balancer)
    with city.balanced([8101, 8102], "routed") as (url, pids):
        [(backends, port)] = made
        assert backends == ["127.0.0.1:8101", "127.0.0.1:8102"]
        assert url == f"http://127.0.0.1:{port}"
        assert pids == []  # no Caddy or HAProxy process was started
    with city.balanced([8101, 8102], "none") as (url, pids):
        assert url == "http://127.0.0.1:8101"  # the shared socket: the first port
