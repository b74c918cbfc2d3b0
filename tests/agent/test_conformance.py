"""The conformance kit passes the project's own agent and fails a broken one with reasons."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from xml.etree import ElementTree

import httpx
import pytest

from agent.conformance.cases import CASES, CaseResult
from agent.conformance.report import summary_line, write_html, write_junit
from agent.conformance.run import run_conformance
from agent.local.network import UTRECHT as LOCAL_UTRECHT
from agent.local.network import local_network
from protocol.clock import FrozenClock
from protocol.identifiers import oin_for_kvk
from tests.agent.conftest import (
    REGISTRY,
    REGISTRY_TOKEN,
    START,
    Network,
    RegistryNetwork,
    agent_settings,
    registry_network,
)
from tests.conftest import REPOSITORY

UTRECHT = "http://utrecht.test"
UTRECHT_OIN = "00000001002220647000"


@pytest.fixture
async def world(database_url: str, registry_database_url: str) -> AsyncIterator[RegistryNetwork]:
    async with registry_network(Network(), FrozenClock(START), registry_database_url) as world:
        settings = agent_settings(
            database_url, gemeente="utrecht", registry_trust_anchor=world.anchor
        )
        await world.start_agent(settings)
        yield world


async def _run(world: RegistryNetwork) -> list[CaseResult]:
    return await run_conformance(
        http=world.http,
        target_url=UTRECHT,
        target_oin=UTRECHT_OIN,
        role="gemeente",
        registry_url=REGISTRY,
        trust_anchor=world.anchor,
        operator_token=REGISTRY_TOKEN,
        clock=world.clock,
        kit_endpoint="http://conformance-kit.test",
    )


async def test_the_agent_passes_every_case_and_the_reports_list_each(
    world: RegistryNetwork, tmp_path: Path
) -> None:
    results = await _run(world)
    failures = [f"{r.case.name}: {r.reason}" for r in results if not r.passed]
    assert failures == []
    assert summary_line(results) == f"{len(CASES)} passed, 0 failed"
    write_junit(results, tmp_path / "junit.xml", target=UTRECHT)
    suite = ElementTree.parse(tmp_path / "junit.xml").getroot()  # noqa: S314 - our own file
    assert suite.get("tests") == str(len(CASES))
    assert suite.get("failures") == "0"
    assert [case.get("name") for case in suite.iter("testcase")] == [c.name for c in CASES]
    write_html(results, tmp_path / "report.html", target=UTRECHT)
    page = (tmp_path / "report.html").read_text()
    for case in CASES:
        assert case.name in page


class BrokenAgent(httpx.AsyncBaseTransport):
    """An agent that trusts any Digest (it recomputes it) and sends receipts unsigned."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        digest = "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()
        headers = [(k, v) for k, v in request.headers.multi_items() if k.lower() != "digest"]
        if any(k.lower() == "digest" for k in request.headers):
            headers.append(("Digest", digest))
        rebuilt = httpx.Request(request.method, request.url, headers=headers, content=body)
        response = await self.inner.handle_async_request(rebuilt)
        content = await response.aread()
        answer_headers = [
            (k, v)
            for k, v in response.headers.multi_items()
            if k.lower() != "nlgov-adr-payload-sig" or response.status_code != 200
        ]
        return httpx.Response(response.status_code, headers=answer_headers, content=content)


async def test_a_broken_agent_fails_with_readable_reasons(
    world: RegistryNetwork, tmp_path: Path
) -> None:
    routes = world.network.routes
    routes["utrecht.test"] = BrokenAgent(routes["utrecht.test"])
    results = {result.case.name: result for result in await _run(world)}
    happy = results["happy path: a message gets a signed receipt for its bytes"]
    assert not happy.passed
    assert happy.reason == "the receipt has no nlgov-adr-payload-sig header"
    digest = results["a Digest that does not match the body"]
    assert not digest.passed
    assert "expected 400 urn:meeverhuizen:problem:digest-mismatch" in digest.reason
    assert results["alg HS256"].passed  # what the broken agent still does right still passes
    write_junit(list(results.values()), tmp_path / "junit.xml", target=UTRECHT)
    failures = {
        case.get("name"): case.find("failure")
        for case in ElementTree.parse(tmp_path / "junit.xml").getroot().iter("testcase")  # noqa: S314
    }
    failure = failures["a Digest that does not match the body"]
    assert failure is not None
    assert "digest-mismatch" in (failure.get("message") or "")


@pytest.mark.parametrize("example", ["dossier-offer.json", "takeover-order.json"])
def test_the_kit_sends_the_published_examples(example: str) -> None:
    kit_copy = REPOSITORY / "agent" / "conformance" / example
    published = REPOSITORY / "docs" / "examples" / example
    assert kit_copy.read_text(encoding="utf-8") == published.read_text(encoding="utf-8")


async def test_a_supplier_agent_passes_every_case(
    registry_database_url: str, database_url: str
) -> None:
    async with registry_network(Network(), FrozenClock(START), registry_database_url) as world:
        kvk = "12345678"
        settings = agent_settings(
            database_url, gemeente="utrecht", registry_trust_anchor=world.anchor
        ).model_copy(
            update={
                "role": "supplier",
                "oin": oin_for_kvk(kvk),
                "kvk_number": kvk,
                "gemeentecode": None,
                "name": "Hulpmiddelen BV",
                "public_base_url": "http://supplier.test",
            }
        )
        await world.start_agent(settings)
        results = await run_conformance(
            http=world.http,
            target_url="http://supplier.test",
            target_oin=oin_for_kvk(kvk),
            role="supplier",
            registry_url=REGISTRY,
            trust_anchor=world.anchor,
            operator_token=REGISTRY_TOKEN,
            clock=world.clock,
            kit_endpoint="http://conformance-kit.test",
        )
    assert [f"{r.case.name}: {r.reason}" for r in results if not r.passed] == []


@pytest.mark.slow
async def test_the_command_passes_an_agent_process_and_writes_both_reports(tmp_path: Path) -> None:
    async with local_network(tmp_path, gemeenten=(LOCAL_UTRECHT,)) as network:
        utrecht = network.agents[LOCAL_UTRECHT.key]
        token = {"MEEVERHUIZEN_REGISTRY_OPERATOR_TOKEN": network.registry_operator_token}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "from agent.cli import main; main()", "conformance",
            "--target", utrecht.base_url, "--target-oin", LOCAL_UTRECHT.oin,
            "--registry-url", network.registry.base_url,
            "--trust-anchor", str(tmp_path / "registry-anchor.json"),
            "--junit", str(tmp_path / "conformance.xml"),
            "--html", str(tmp_path / "conformance.html"),
            env={**os.environ, **token},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        output, _ = await process.communicate()
    text = output.decode()
    assert process.returncode == 0, text
    assert text.rstrip().endswith(f"{len(CASES)} passed, 0 failed")
    assert "digest-mismatch" not in text  # no failure reasons
    page = (tmp_path / "conformance.html").read_text()
    assert all(case.name in page for case in CASES)
    assert (tmp_path / "conformance.xml").exists()
