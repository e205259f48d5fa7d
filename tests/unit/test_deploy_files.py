"""The deployment files (ops/deploy/) against the code they deploy.

No container engine runs here, so nothing starts them; this reads them the way an operator's
tools would and checks what a typo would otherwise break only in production: the files parse,
every Farmacy setting they set is one the code reads, every command they run is a real
`farmacy` command with options it accepts, and ports and probes match the API.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from litestar.handlers import HTTPRouteHandler

from interfaces.cli.main import app as farmacy_app
from interfaces.http.operations import HealthRoutes
from ops.balancer import caddy_binary
from ops.settings import SETTINGS_HELP

DEPLOY = Path(__file__).resolve().parents[2] / "ops" / "deploy"
ROOT = DEPLOY.parents[1]
API_PORT = 8000
FARMACY_IMAGE = "farmacy"


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def manifests() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        found.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    return found


def farmacy_services() -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose()["services"].items()
        if str(service.get("image", "")).split(":")[0] == FARMACY_IMAGE
    }


def pod_containers() -> Iterator[tuple[str, dict[str, Any]]]:
    for doc in manifests():
        template = doc.get("spec", {}).get("template", {})
        for container in template.get("spec", {}).get("containers", []):
            yield f"{doc['kind']}/{doc['metadata']['name']}", container


def farmacy_containers() -> Iterator[tuple[str, dict[str, Any]]]:
    for where, container in pod_containers():
        if container["image"].split("/")[-1].split(":")[0] == FARMACY_IMAGE:
            yield where, container


def commands() -> Iterator[tuple[str, list[str]]]:
    """Every `farmacy ...` command line in the compose file and the manifests."""
    for name, service in farmacy_services().items():
        yield f"compose/{name}", [str(word) for word in service["command"]]
    for where, container in farmacy_containers():
        yield where, [*container.get("command", []), *container.get("args", [])]


def test_every_deploy_file_parses_and_names_its_kinds() -> None:
    assert compose()["services"], "compose.yaml has no services"
    kinds = {doc["kind"] for doc in manifests()}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "ConfigMap", "Secret"} <= kinds


def _resolve(words: list[str]) -> Any:
    """Parse `words` (without the leading `farmacy`) as the CLI would, without running it: the
    leaf command's context. Typer carries its own copy of click (typer._click), so a group is
    a TyperGroup, not a click.Group: asking click's class took every group for a leaf, and
    an unknown option of any subcommand passed."""
    command: Any = typer.main.get_command(farmacy_app)
    context: Any = None
    while True:
        context = command.make_context(command.name or "farmacy", list(words), parent=context)
        if not isinstance(command, typer.core.TyperGroup):
            return context
        rest = [*context._protected_args, *context.args]  # what the group left to its command
        assert rest, f"{words} stops at a group"
        _, command, words = command.resolve_command(context, rest)  # UsageError if none


@pytest.mark.parametrize("where, words", list(commands()), ids=lambda v: str(v))
def test_every_command_is_a_real_farmacy_command(where: str, words: list[str]) -> None:
    assert words[0] == "farmacy", f"{where} runs {words[0]!r}, not the farmacy command"
    try:
        _resolve(words[1:])
    except Exception as error:  # typer's own click's UsageError, not click's
        pytest.fail(f"{where}: `{' '.join(words)}`: {getattr(error, 'format_message', error)}")


def test_an_option_no_command_takes_is_refused() -> None:
    with pytest.raises(Exception, match="--bogus"):
        _resolve(["fridges", "poll", "--bogus"])


def _env_names() -> Iterator[tuple[str, str]]:
    for name, service in farmacy_services().items():
        for variable in service.get("environment", {}):
            yield f"compose/{name}", variable
    for doc in manifests():
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"].startswith("farmacy"):
            for variable in doc.get("data", {}):
                yield f"ConfigMap/{doc['metadata']['name']}", variable
        if doc["kind"] == "Secret" and doc["metadata"]["name"].startswith("farmacy"):
            for variable in doc.get("stringData", {}):
                yield f"Secret/{doc['metadata']['name']}", variable
    for where, container in farmacy_containers():
        for variable in container.get("env", []):
            yield where, variable["name"]


def test_every_setting_the_files_set_is_one_the_code_reads() -> None:
    unknown = [(where, name) for where, name in _env_names() if name not in SETTINGS_HELP]
    assert unknown == [], f"settings the code never reads: {unknown}"


def test_the_api_listens_where_probes_and_the_balancer_look() -> None:
    api_commands = [words for _, words in commands() if words[1] == "api"]
    assert api_commands
    for words in api_commands:
        assert words[words.index("--port") + 1] == str(API_PORT)
        assert words[words.index("--host") + 1] == "0.0.0.0"
    served = {
        path
        for handler in vars(HealthRoutes).values()
        if isinstance(handler, HTTPRouteHandler)
        for path in handler.paths
    }
    assert {"/healthz", "/readyz"} <= served
    api_pods = [(where, c) for where, c in farmacy_containers() if c.get("args", [""])[0] == "api"]
    assert api_pods, "no API Deployment"
    for where, container in api_pods:
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", where
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", where
        ports = {port["name"]: port["containerPort"] for port in container["ports"]}
        assert ports == {"http": API_PORT}, where
    for where, container in farmacy_containers():
        for probe in (container.get("readinessProbe"), container.get("livenessProbe")):
            if probe:
                assert probe["httpGet"]["path"] in served, where
                assert probe["httpGet"]["port"] == "http", where
    balancer = compose()["services"]["balancer"]
    assert balancer["environment"]["FARMACY_API_UPSTREAMS"].endswith(f":{API_PORT}")


def test_the_image_runs_as_a_user_from_locked_dependencies() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.MULTILINE)
    assert users and users[-1] not in ("root", "0"), "the image must not run as root"
    assert "requirements.lock" in dockerfile
    locked = {
        re.split(r"[=<>\[ ;]", line, maxsplit=1)[0].lower().replace("_", "-")
        for line in (DEPLOY / "requirements.lock").read_text().splitlines()
        if line and not line.startswith(("#", " ", "-"))
    }
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wanted = {
        re.split(r"[=<>~\[ ;]", requirement, maxsplit=1)[0].lower().replace("_", "-")
        for requirement in pyproject["project"]["dependencies"]
    }
    assert wanted - locked == set(), "dependencies missing from requirements.lock"
    for line in (DEPLOY / "requirements.lock").read_text().splitlines():
        if line and not line.startswith(("#", " ", "-")):
            assert "==" in line, f"not pinned: {line}"


def balancer_parts() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The balancer's ConfigMap, its Caddy container and the API's Service, on Kubernetes."""
    docs = {(d["kind"], d["metadata"]["name"]): d for d in manifests()}
    [caddy] = [c for w, c in pod_containers() if w == "Deployment/farmacy-balancer"]
    return docs["ConfigMap", "balancer-caddyfile"], caddy, docs["Service", "farmacy-api"]


def test_kubernetes_balances_with_the_repository_caddyfile() -> None:
    config, caddy, _ = balancer_parts()
    assert config["data"]["Caddyfile"] == (DEPLOY / "Caddyfile").read_text()
    [mount] = caddy["volumeMounts"]
    assert caddy["command"][caddy["command"].index("--config") + 1] == (
        f"{mount['mountPath']}/Caddyfile"
    )


def test_the_kubernetes_balancer_hashes_fridges_over_the_api_pods_it_finds_in_dns() -> None:
    """Caddy itself reads the Caddyfile with the container's environment (`caddy adapt`):
    every route proxies to the A records of the headless API Service on the API's port, and
    orders hash on their fridge."""
    _, caddy, api_service = balancer_parts()
    assert api_service["spec"]["clusterIP"] == "None"  # one A record per pod, not one VIP
    env = {variable["name"]: variable["value"] for variable in caddy["env"]}
    adapted = subprocess.run(
        [caddy_binary(), "adapt", "--config", str(DEPLOY / "Caddyfile"), "--adapter", "caddyfile"],
        env={"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    [server] = json.loads(adapted.stdout)["apps"]["http"]["servers"].values()
    assert server["listen"] == [f"0.0.0.0:{API_PORT}"]
    proxies = [h for h in _handlers(server["routes"]) if h.get("handler") == "reverse_proxy"]
    assert len(proxies) == 2  # fridge orders, and the rest
    for proxy in proxies:
        assert "upstreams" not in proxy  # none listed: the pods come and go
        dynamic = proxy["dynamic_upstreams"]
        assert dynamic["source"] == "a"
        assert dynamic["name"] == api_service["metadata"]["name"]
        assert int(dynamic["port"]) == API_PORT
    policies = {p["load_balancing"]["selection_policy"]["policy"] for p in proxies}
    assert policies == {"header", "round_robin"}


def _handlers(routes: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for route in routes:
        for handler in route.get("handle", []):
            yield handler
            yield from _handlers(handler.get("routes", []))
