"""``meeverhuizen agent host`` as a process: real HTTP requests routed by host name."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agent.local.network import AMSTERDAM, UTRECHT
from agent.local.processes import HOST, ServerProcess, free_port
from agent.settings import hash_token
from protocol.jwk import generate_private_jwk, public_jwk
from tests.agent.test_replicas import write_config

PROBLEM = "urn:meeverhuizen:problem:"


def _token(key: str) -> str:
    return f"case-system-token-of-{key}-0123456789"


@pytest.fixture
def host(tmp_path: Path) -> Iterator[ServerProcess]:
    port = free_port()
    anchor = tmp_path / "registry-anchor.json"
    anchor.write_text(json.dumps(public_jwk(generate_private_jwk("EdDSA"))), encoding="utf-8")
    files = []
    for spec in (UTRECHT, AMSTERDAM):
        key_file = tmp_path / f"{spec.key}-key.json"
        key_file.write_text(json.dumps(generate_private_jwk("EdDSA")), encoding="utf-8")
        files.append(f"{spec.key}.toml")
        write_config(
            tmp_path / files[-1],
            {
                "oin": spec.oin,
                "gemeentecode": spec.gemeentecode,
                "name": spec.name,
                "signing_key_file": str(key_file),
                # No registry listens here: the host runs, and says it is not ready.
                "registry_url": f"http://{HOST}:{free_port()}",
                "registry_trust_anchor_file": str(anchor),
                "database_url": f"sqlite+aiosqlite:///{tmp_path / spec.key}.sqlite",
                "public_base_url": f"http://{spec.key}.test:{port}",
                "endpoint_url": f"http://{HOST}:{port}",
                "case_system_token_sha256": hash_token(_token(spec.key)),
            },
        )
    write_config(
        tmp_path / "hosting.toml",
        {
            "public_base_url": f"http://{HOST}:{port}",
            "host": HOST,
            "port": port,
            "organisations": files,
        },
    )
    server = ServerProcess(
        name="host",
        arguments=("agent", "host", "--config", str(tmp_path / "hosting.toml")),
        port=port,
        log_path=tmp_path / "host.log",
        health_path="/v1/health",
    )
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
