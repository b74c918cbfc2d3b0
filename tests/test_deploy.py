"""deploy/ checked as far as this machine allows: no container engine runs here.

Every YAML file parses; the compose file is validated against the Compose Specification (the
compose_spec Rust library); every MEEVERHUIZEN_* variable and agent TOML file matches the settings
classes, so the deployment files cannot drift from the code.
"""

from __future__ import annotations

import http.server
import json
import re
import runpy
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from compose_spec import PyCompose

from agent.settings import AgentSettings, load_settings
from registry.settings import RegistrySettings
from tests.conftest import REPOSITORY

DEPLOY = REPOSITORY / "deploy"
OUR_IMAGE = "localhost/meeverhuizen:0.1.0"
VARIABLE = re.compile(r"MEEVERHUIZEN_(AGENT|REGISTRY)_([A-Z0-9_]+)")


def _yaml_files() -> list[Path]:
    return sorted(DEPLOY.rglob("*.yaml"))


def _documents(path: Path) -> list[dict[str, Any]]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return document


def _kubernetes() -> list[dict[str, Any]]:
    return [
        document
        for path in sorted((DEPLOY / "kubernetes").glob("*.yaml"))
        if path.name != "kustomization.yaml"
        for document in _documents(path)
    ]


def _deployments() -> list[dict[str, Any]]:
    return [document for document in _kubernetes() if document["kind"] == "Deployment"]


@pytest.mark.parametrize("path", _yaml_files(), ids=lambda path: path.name)
def test_every_yaml_file_parses(path: Path) -> None:
    assert _documents(path)


def test_compose_file_follows_the_compose_specification(compose: dict[str, Any]) -> None:
    # PyYAML resolves the `<<` merge keys first, as compose itself does.
    specification = PyCompose.from_json(json.dumps(compose)).to_spec()
    assert specification.services is not None
    assert set(specification.services) >= {"postgres", "registry"}


def test_compose_network_has_two_gemeenten_and_two_suppliers(compose: dict[str, Any]) -> None:
    roles = []
    for name, service in compose["services"].items():
        if service["image"] != OUR_IMAGE or service["command"][0] != "agent":
            continue
        mount = next(
            v for v in service["volumes"] if v.endswith(":/etc/meeverhuizen/agent.toml:ro")
        )
        config = tomllib.loads((DEPLOY / mount.split(":")[0]).read_text())
        assert config["public_base_url"] == f"http://{name}:8100"
        roles.append(config["role"])
    assert sorted(roles) == ["gemeente", "gemeente", "supplier", "supplier"]


def test_compose_services_are_healthchecked_and_ordered(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        assert service["healthcheck"]["test"][0] == "CMD", name
        for dependency, rule in service.get("depends_on", {}).items():
            assert dependency in services, name
            assert rule["condition"] == "service_healthy", name


def test_our_containers_run_as_non_root_with_a_read_only_root(compose: dict[str, Any]) -> None:
    # postgres is the upstream image: its entrypoint drops to the postgres user itself.
    ours = {n: s for n, s in compose["services"].items() if s["image"] == OUR_IMAGE}
    assert len(ours) == 5
    for name, service in ours.items():
        user = str(service["user"]).split(":")[0]
        assert user not in {"0", "root"}, name
        assert service["read_only"] is True, name


def test_compose_mounts_exist_and_secrets_are_not_in_the_repository(
    compose: dict[str, Any],
) -> None:
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (DEPLOY / source).is_file(), source
        for secret in service.get("secrets", []):
            assert secret in compose["secrets"]
    for secret in compose["secrets"].values():
        assert secret["file"].startswith("./secrets/")
    assert "secrets/" in (DEPLOY / ".gitignore").read_text().splitlines()


def _deploy_texts() -> Iterator[tuple[Path, str]]:
    for path in sorted(DEPLOY.rglob("*")):
        if path.is_file():
            yield path, path.read_text()


def test_every_variable_named_in_deploy_is_a_real_setting() -> None:
    fields = {"AGENT": AgentSettings.model_fields, "REGISTRY": RegistrySettings.model_fields}
    named = set()
    for path, text in _deploy_texts():
        for service, field in VARIABLE.findall(text):
            named.add(field)
            assert field.split("__")[0].lower() in fields[service], f"{path.name}: {field}"
    assert {"DATABASE_URL", "TLS_CLIENT_AUTH"} <= named


def _agent_configs() -> Iterator[tuple[str, str]]:
    for path in sorted((DEPLOY / "config").glob("*.toml")):
        yield path.name, path.read_text()
    for document in _kubernetes():
        if document["kind"] == "ConfigMap" and "agent.toml" in document["data"]:
            yield document["metadata"]["name"], document["data"]["agent.toml"]


@pytest.mark.parametrize(("name", "text"), list(_agent_configs()), ids=lambda v: v[:20])
def test_agent_configurations_are_valid_settings(name: str, text: str, tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(text)
    settings = load_settings(config)
    assert settings.host == "0.0.0.0", name  # noqa: S104 - inside a container
    assert settings.signing_key_file is not None, name


def test_kubernetes_manifests_have_identity_and_are_locked_down() -> None:
    documents = _kubernetes()
    assert {d["kind"] for d in documents} >= {"ConfigMap", "Deployment", "Service"}
    for document in documents:
        assert document["apiVersion"]
        assert document["metadata"]["name"]
    assert len(_deployments()) == 2
    for deployment in _deployments():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            assert {"requests", "limits"} <= set(container["resources"])
            assert "readinessProbe" in container
            assert "livenessProbe" in container


def test_kubernetes_probes_call_the_readiness_and_liveness_endpoints() -> None:
    for deployment in _deployments():
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            ready = container["readinessProbe"]["exec"]["command"]
            live = container["livenessProbe"]["exec"]["command"]
            assert ready[-2:] == ["/opt/meeverhuizen/healthcheck.py", "/v1/health/ready"]
            assert live[-2:] == ["/opt/meeverhuizen/healthcheck.py", "/v1/health"]


def test_kubernetes_services_select_a_deployment() -> None:
    pods = [d["spec"]["template"]["metadata"]["labels"] for d in _deployments()]
    for service in (d for d in _kubernetes() if d["kind"] == "Service"):
        selector = service["spec"]["selector"]
        assert any(selector.items() <= labels.items() for labels in pods)


def test_kubernetes_volumes_and_secrets_are_referenced_not_included() -> None:
    assert not [d for d in _kubernetes() if d["kind"] == "Secret"]
    for deployment in _deployments():
        pod = deployment["spec"]["template"]["spec"]
        volumes = {volume["name"] for volume in pod["volumes"]}
        for container in pod["containers"]:
            assert {m["name"] for m in container["volumeMounts"]} <= volumes


def _final_stage(containerfile: str) -> list[str]:
    stages = re.split(r"^FROM ", containerfile, flags=re.MULTILINE)
    assert len(stages) >= 3, "a multi-stage build"
    return [line.strip() for line in stages[-1].splitlines()]


def test_containerfile_runs_as_a_non_root_user_with_a_healthcheck() -> None:
    text = (DEPLOY / "Containerfile").read_text()
    final = _final_stage(text)
    assert final[0].startswith("docker.io/library/python:3.11-slim")
    users = [line.split()[1] for line in final if line.startswith("USER ")]
    assert users
    assert users[-1].split(":")[0] not in {"0", "root"}
    assert any(line.startswith("HEALTHCHECK ") for line in final)
    assert "HEALTHCHECK_URL=http://127.0.0.1:8100/v1/health" in text
    assert not re.search(r"^(COPY|ADD) .*secrets", text, flags=re.MULTILINE)
    assert not VARIABLE.search(text), "no settings (and so no secrets) baked into the image"


def _locked() -> dict[str, list[str]]:
    text = (DEPLOY / "requirements.lock").read_text().replace("\\\n", " ")
    pins: dict[str, list[str]] = {}
    for line in text.splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)", line)
        if match:
            pins[match.group(1).lower().replace("_", "-")] = re.findall(r"--hash=sha256:\w+", line)
    return pins


def test_the_image_installs_dependencies_from_the_lock_file_with_hashes() -> None:
    text = (DEPLOY / "Containerfile").read_text()
    assert "pip install --require-hashes -r deploy/requirements.lock" in text
    assert "pip install --no-deps ." in text
    pins = _locked()
    project = tomllib.loads((DEPLOY.parent / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        name = re.split(r"[\[<>=!;~ ]", requirement, maxsplit=1)[0].lower().replace("_", "-")
        assert name in pins, f"{name} is not in deploy/requirements.lock"
    assert all(hashes for hashes in pins.values()), "every pin carries its hashes"


def test_nginx_example_requires_client_certificates() -> None:
    text = (DEPLOY / "nginx-mtls.conf").read_text()
    assert re.search(r"^\s*ssl_verify_client\s+on;", text, flags=re.MULTILINE)
    assert "proxy_set_header X-Client-Certificate-Subject $ssl_client_s_dn;" in text


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path in ("/v1/health", "/v1/health/ready") else 503)
        self.end_headers()

    def log_message(self, *arguments: object) -> None:
        """Quiet."""


@pytest.fixture
def health_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize(("path", "expected"), [("/v1/health", 0), ("/v1/broken", 1)])
def test_healthcheck_script_reports_the_answer(
    health_server: str, path: str, expected: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEALTHCHECK_URL", health_server + path)
    script = runpy.run_path(str(DEPLOY / "healthcheck.py"))
    assert script["main"]([]) == expected


@pytest.mark.parametrize(("path", "expected"), [("/v1/health/ready", 0), ("/v1/broken", 1)])
def test_healthcheck_script_takes_the_probe_path_as_argument(
    health_server: str, path: str, expected: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEALTHCHECK_URL", health_server + "/v1/status")
    script = runpy.run_path(str(DEPLOY / "healthcheck.py"))
    assert script["main"]([path]) == expected
