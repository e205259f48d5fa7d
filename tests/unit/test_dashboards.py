"""The Grafana dashboard, the alert rules and the scrape configs (ops/deploy/) against the
metrics the code serves.

A renamed metric breaks a dashboard panel or an alert silently: the expression just returns
nothing. So every metric name an expression uses must be one the processes register; that set
is read from prometheus_client's registry after importing what the API and every other
long-running process serve (not typed here), and every Farmacy process of compose.yaml and
the Kubernetes manifests must be scraped on the port it serves its metrics on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

from ops.root import PROCESSES
from tests.unit.test_deploy_files import (
    API_PORT,
    DEPLOY,
    _resolve,
    compose,
    farmacy_containers,
    farmacy_services,
    manifests,
)

DASHBOARD = DEPLOY / "grafana" / "farmacy.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yaml"
PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"
KUBERNETES_SCRAPE = DEPLOY / "prometheus" / "kubernetes.yml"

SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "gauge": ("",),
    "info": ("_info",),
    "unknown": ("",),
}
PROMETHEUS_OWN = {"up"}
"""Series Prometheus makes for every target itself."""
KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "Inf", "NaN"}


def served_names() -> set[str]:
    """Every series name the API's /metrics and the other processes' metrics ports can show."""
    import interfaces.http.app  # noqa: F401 - the API: /metrics serves this registry
    import ops.root  # noqa: F401 - every long-running process's modules
    from ops import metrics

    metrics.register_collectors()  # what a process given --metrics-port adds
    return {
        family.name + suffix for family in REGISTRY.collect() for suffix in SUFFIXES[family.type]
    }


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (not its functions, labels or keywords)."""
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    bare = re.sub(r"\{[^}]*\}", "", bare)  # label matchers
    bare = re.sub(r"\[[^\]]*\]", "", bare)  # ranges
    bare = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", bare)
    names = set()
    for found in re.finditer(r"(?<![\w.])[A-Za-z_:][A-Za-z0-9_:]*", bare):
        if bare[found.end() :].lstrip().startswith("(") or found.group() in KEYWORDS:
            continue  # a function, or an operator
        names.add(found.group())
    return names


def balanced(expr: str) -> bool:
    """Brackets close in order (no promtool here to parse PromQL: this catches the usual slip)."""
    closing = {")": "(", "]": "[", "}": "{"}
    opened: list[str] = []
    for char in re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr):
        if char in "([{":
            opened.append(char)
        elif char in closing and (not opened or opened.pop() != closing[char]):
            return False
    return not opened


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panel_exprs() -> Iterator[tuple[str, str]]:
    for panel in dashboard()["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]


def alert_rules() -> list[dict[str, Any]]:
    loaded = yaml.safe_load(ALERTS.read_text())
    return [rule for group in loaded["groups"] for rule in group["rules"]]


def test_the_name_reader_finds_names_and_only_names() -> None:
    expr = (
        'sum by (le, path) (rate(farmacy_x_bucket{outcome=~"a|b"}[5m])) '
        "/ clamp_min(sum(up), 1e-9) > 0.01 and on (job) farmacy_y"
    )
    assert metric_names(expr) == {"farmacy_x_bucket", "up", "farmacy_y"}
    assert balanced(expr) and not balanced("sum(rate(x[5m])") and not balanced('a{b="c"]')


def test_the_dashboard_is_grafana_json_on_the_provisioned_data_source() -> None:
    board = dashboard()
    assert board["uid"] and board["title"] and board["panels"]
    provisioned = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yaml").read_text()
    )
    [source] = provisioned["datasources"]
    for panel in board["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == source["uid"], panel["title"]
            assert panel["targets"], panel["title"]


def test_every_metric_the_dashboard_shows_is_one_a_process_serves() -> None:
    served = served_names() | PROMETHEUS_OWN
    unknown = {
        (title, name) for title, expr in panel_exprs() for name in metric_names(expr) - served
    }
    assert unknown == set()
    assert [title for title, expr in panel_exprs() if not balanced(expr)] == []


def test_every_metric_an_alert_watches_is_one_a_process_serves() -> None:
    served = served_names() | PROMETHEUS_OWN
    rules = alert_rules()
    assert rules
    for rule in rules:
        assert rule["alert"].startswith("Farmacy") and rule["annotations"]["summary"], rule
        assert balanced(rule["expr"]), rule["alert"]
        names = metric_names(rule["expr"])
        assert names, rule["alert"]
        assert names - served == set(), rule["alert"]


@pytest.mark.parametrize("subject", ["lag", "error", "stale", "shed", "payment"])
def test_the_dashboard_and_the_alerts_watch_what_the_operators_asked_for(subject: str) -> None:
    assert any(subject in expr for _, expr in panel_exprs())
    assert any(subject in rule["expr"] for rule in alert_rules())


def metrics_port() -> int:
    return int(compose()["services"]["fulfilment"]["environment"]["FARMACY_METRICS_PORT"])


def test_prometheus_scrapes_every_process_of_compose_where_it_serves() -> None:
    config = yaml.safe_load(PROMETHEUS.read_text())
    assert all((PROMETHEUS.parent / f).is_file() for f in config["rule_files"])
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    [api] = jobs["farmacy-api"]["dns_sd_configs"]
    assert api["names"] == ["api"] and api["port"] == API_PORT
    targets = {
        target
        for job in jobs.values()
        for static in job.get("static_configs", [])
        for target in static["targets"]
    }
    wanted = {f"{name}:{metrics_port()}" for name in farmacy_services() if name != "api"}
    assert targets == wanted
    demo_only = {n for n, s in farmacy_services().items() if "demo" in s.get("profiles", [])}
    always = {t.split(":")[0] for t in jobs["farmacy-processes"]["static_configs"][0]["targets"]}
    assert always and not demo_only & always, "a demo-only process would alert as down"


def test_compose_runs_prometheus_and_grafana_on_the_observe_profile_with_these_files() -> None:
    services = compose()["services"]
    for name in ("prometheus", "grafana"):
        assert services[name]["profiles"] == ["observe"]
        for volume in services[name]["volumes"]:
            assert (DEPLOY / volume.split(":")[0]).exists(), volume


def test_every_kubernetes_pod_says_where_its_metrics_are() -> None:
    [config] = [d for d in manifests() if d["metadata"]["name"] == "farmacy-config"]
    port = int(config["data"]["FARMACY_METRICS_PORT"])
    assert port == metrics_port()
    pods = {
        f"{d['kind']}/{d['metadata']['name']}": d["spec"]["template"]["metadata"]
        for d in manifests()
        if d["kind"] == "Deployment"
    }
    for where, container in farmacy_containers():
        annotations = pods[where]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true", where
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        wanted = API_PORT if container["args"][0] == "api" else port
        assert int(annotations["prometheus.io/port"]) == wanted, where
        if container["args"][0] != "api":
            assert ports["metrics"] == port, where
    scrape = yaml.safe_load(KUBERNETES_SCRAPE.read_text())
    [job] = scrape["scrape_configs"]
    assert job["kubernetes_sd_configs"] == [{"role": "pod"}]


@pytest.mark.parametrize("process", sorted(PROCESSES))
def test_every_long_running_process_takes_a_metrics_port(process: str) -> None:
    """Every process of the root's table can be scraped (the API: on its own port)."""
    context = _resolve([*PROCESSES[process].command, "--metrics-port", "9464"])
    assert context.params["metrics_port"] == 9464
