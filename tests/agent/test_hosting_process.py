"""``meeverhuizen agent host`` as a process: real HTTP requests routed by host name."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from agent.local.network import AMSTERDAM, UTRECHT, start_registry
from agent.local.processes import HOST, ServerProcess, free_port
from agent.local.synthetic import valid_bsns
from agent.settings import hash_token
from protocol.jwk import generate_private_jwk, public_jwk
from protocol.messages import MESSAGE_TYPES
from registry.client import RegistryClient
from registry.operator import OperatorClient
from tests.agent.test_processes import give_consent, start_dossiers
from tests.agent.test_replicas import write_config

PROBLEM = "urn:meeverhuizen:problem:"


def _token(key: str) -> str:
    return f"case-system-token-of-{key}-0123456789"


def _hosting(tmp_path: Path, port: int, registry_url: str, **extra: object) -> ServerProcess:
    """Utrecht and Amsterdam hosted by one ``agent host`` process on ``port`` (not started)."""
    files = []
    for spec in (UTRECHT, AMSTERDAM):
        key_file = tmp_path / f"{spec.key}-key.json"
        key_file.write_text(json.dumps(generate_private_jwk("EdDSA")), encoding="utf-8")
        files.append(f"{spec.key}.toml")
        values: dict[str, object] = {
            "oin": spec.oin,
            "gemeentecode": spec.gemeentecode,
            "name": spec.name,
            "signing_key_file": str(key_file),
            "registry_url": registry_url,
            "registry_trust_anchor_file": str(tmp_path / "registry-anchor.json"),
            "database_url": f"sqlite+aiosqlite:///{tmp_path / spec.key}.sqlite",
            "public_base_url": f"http://{spec.key}.test:{port}",
            "endpoint_url": f"http://{HOST}:{port}",
            "case_system_token_sha256": hash_token(_token(spec.key)),
        }
        write_config(tmp_path / files[-1], values | extra)
    write_config(
        tmp_path / "hosting.toml",
        {
            "public_base_url": f"http://{HOST}:{port}",
            "host": HOST,
            "port": port,
            "organisations": files,
        },
    )
    return ServerProcess(
        name="host",
        arguments=("agent", "host", "--config", str(tmp_path / "hosting.toml")),
        port=port,
        log_path=tmp_path / "host.log",
        health_path="/v1/health",
    )


@pytest.fixture
def host(tmp_path: Path) -> Iterator[ServerProcess]:
    anchor = tmp_path / "registry-anchor.json"
    anchor.write_text(json.dumps(public_jwk(generate_private_jwk("EdDSA"))), encoding="utf-8")
    # No registry listens there: the host runs, and says it is not ready.
    server = _hosting(tmp_path, free_port(), f"http://{HOST}:{free_port()}")
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_requests_reach_the_organisation_their_host_name_names(host: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=host.base_url) as http:
        await host.wait_ready(http)
        for spec, other in ((UTRECHT, AMSTERDAM), (AMSTERDAM, UTRECHT)):
            at = {"Host": f"{spec.key}.test:{host.port}"}
            mine = await http.get("/v1/dossiers", headers=at | _bearer(spec.key))
            assert (mine.status_code, mine.json()) == (200, [])
            theirs = await http.get("/v1/dossiers", headers=at | _bearer(other.key))
            assert theirs.status_code == 401
        # The host itself, by its own address: health, readiness and nothing of an organisation.
        assert (await http.get("/v1/health")).json() == {"status": "ok"}
        ready = await http.get("/v1/health/ready")
        assert ready.status_code == 503
        assert ready.json()["type"] == f"{PROBLEM}not-ready"
        assert UTRECHT.name in ready.json()["detail"]
        assert AMSTERDAM.name in ready.json()["detail"]
        unknown = await http.get("/v1/dossiers", headers=_bearer(UTRECHT.key))
        assert unknown.status_code == 404
        assert unknown.json()["type"] == f"{PROBLEM}organisation-not-hosted"
        # A message nobody can read is refused as any agent refuses it: here, unsigned.
        refused = await http.post(
            "/v1/messages", content=b"{not json", headers={"Content-Type": "application/json"}
        )
        assert refused.status_code == 401
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["type"] == f"{PROBLEM}signature-missing"


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {_token(key)}"}


async def test_a_handover_between_two_hosted_gemeenten_over_real_http(tmp_path: Path) -> None:
    registry = start_registry(tmp_path, free_port())
    server = _hosting(
        tmp_path,
        free_port(),
        registry.server.base_url,
        peer_allow_list=[HOST],
        outbox_base_delay_seconds=0.2,
        outbox_max_delay_seconds=1.0,
        delivery_interval_seconds=0.5,
    )
    try:
        async with httpx.AsyncClient(timeout=10.0) as http:
            server.start()
            await registry.server.wait_ready(http)
            operator = OperatorClient(registry.server.base_url, registry.operator_token, http=http)
            for spec in (UTRECHT, AMSTERDAM):
                code = await operator.issue_enrolment_code(gemeentecode=spec.gemeentecode)
                key = json.loads((tmp_path / f"{spec.key}-key.json").read_text())
                await RegistryClient(registry.server.base_url, registry.anchor, http=http).enrol(
                    code=code,
                    oin=spec.oin,
                    endpoint=server.base_url,
                    protocol_versions=["1.0"],
                    message_types=list(MESSAGE_TYPES),
                    public_jwks=[public_jwk(key)],
                )
            await server.wait_ready(http)
            [dossier_id] = await start_dossiers(http, _Hosted(server, UTRECHT.key), valid_bsns(1))
            await give_consent(http, _Hosted(server, UTRECHT.key), dossier_id)

            # The offer, the decision and the receipts go through the one shared endpoint.
            states: dict[str, object] = {}
            for _ in range(120):
                for spec in (UTRECHT, AMSTERDAM):
                    answer = await http.get(
                        f"{server.base_url}/v1/dossiers/{dossier_id}",
                        headers=_Hosted(server, spec.key).auth(),
                    )
                    # Amsterdam has no dossier until the offer arrives (404).
                    states[spec.key] = answer.json().get("state", answer.status_code)
                if states == {"utrecht": "completed", "amsterdam": "completed"}:
                    break
                await asyncio.sleep(0.5)
            assert states == {"utrecht": "completed", "amsterdam": "completed"}
    finally:
        server.stop()
        registry.server.stop()


@dataclass(frozen=True)
class _Hosted:
    """A gemeente hosted by ``server``: reached at the host's address by its own host name."""

    server: ServerProcess
    key: str

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def auth(self) -> dict[str, str]:
        return {"Host": f"{self.key}.test:{self.server.port}"} | _bearer(self.key)
