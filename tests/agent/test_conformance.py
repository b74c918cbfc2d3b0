"""The conformance kit passes the project's own agent and fails a broken one with reasons."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from xml.etree import ElementTree

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from agent.app import create_app
from agent.conformance.cases import CASES, CaseResult
from agent.conformance.desk import AgentDesk, OperatorDesk
from agent.conformance.endpoint import Arrival, KitEndpoint, serve_endpoint
from agent.conformance.gemeente_cases import EXCEPTION_ISO_CODE
from agent.conformance.kit import AgentPlanner, Desk, Planner
from agent.conformance.own_registry import TargetEntry, enrol_target
from agent.conformance.report import summary_line, write_html, write_junit
from agent.conformance.run import Serve, cases_for, run_conformance
from agent.local.network import UTRECHT as LOCAL_UTRECHT
from agent.local.network import local_network
from agent.local.processes import HOST, free_port
from agent.service import AgentService
from agent.settings import AgentSettings, DeviceExceptionPolicy, TakeoverSettings, hash_token
from agent.storage.tables import (
    DepartingDeviceRow,
    DeviceTransferRow,
    DossierRow,
    SettlementRow,
)
from protocol.clock import FrozenClock
from protocol.identifiers import oin_for_kvk
from protocol.jwk import generate_private_jwk, private_jwk_to_pem, public_jwk
from protocol.messages import MESSAGE_TYPES
from registry.client import RegistryClient
from registry.operator import OperatorClient
from tests.agent.conftest import (
    CASE_TOKEN,
    REGISTRY,
    REGISTRY_TOKEN,
    START,
    Network,
    RegistryNetwork,
    agent_settings,
    registry_network,
    supplier_settings,
)
from tests.conftest import REPOSITORY

UTRECHT = "http://utrecht.test"
UTRECHT_OIN = "00000001002220647000"
KIT_HOST = "conformance-kit.test"
BRP_TOKEN = "brp-push-token-for-conformance-0123456789"
# What a gemeente target must be configured with for the cases off the happy path.
KIT_SETTINGS = {
    "device_exceptions": {
        EXCEPTION_ISO_CODE[:5]: DeviceExceptionPolicy(
            reason_code="not-in-assortment",
            reason_text="Deze rollator hebben wij niet in ons aanbod.",
            alternative="U krijgt van ons een rollator die bij u past.",
        )
    },
    "brp_dossier_requests": True,
    "brp_token_sha256": hash_token(BRP_TOKEN),
}
GEMEENTE_CASES = cases_for("gemeente")
DECISION = "an offer is answered with a signed device-decision on every offered device"
Wrap = Callable[[httpx.AsyncBaseTransport], httpx.AsyncBaseTransport]


@pytest.fixture
async def world(database_url: str, registry_database_url: str) -> AsyncIterator[RegistryNetwork]:
    async with registry_network(Network(), FrozenClock(START), registry_database_url) as world:
        settings = agent_settings(
            database_url,
            gemeente="utrecht",
            registry_trust_anchor=world.anchor,
            scheduler_enabled=True,  # the decision for the kit goes out on its own
            **KIT_SETTINGS,
        )
        await world.start_agent(settings)
        yield world


def _serving(world: RegistryNetwork, wrap: Wrap | None = None) -> Serve:
    """Serve the kit's endpoint at ``KIT`` on the in-process network."""

    @asynccontextmanager
    async def serve(app: FastAPI) -> AsyncIterator[None]:
        transport: httpx.AsyncBaseTransport = httpx.ASGITransport(app=app)
        world.network.routes[KIT_HOST] = wrap(transport) if wrap else transport
        yield

    return serve


async def _run(
    world: RegistryNetwork,
    *,
    wrap: Wrap | None = None,
    answer_seconds: float = 10.0,
    target: tuple[str, str, str] = (UTRECHT, UTRECHT_OIN, "gemeente"),
    planner: Planner | None = None,
    told: list[str] | None = None,
    desk: Desk | None = None,
) -> list[CaseResult]:
    url, oin, role = target
    tell = (told if told is not None else []).append
    if desk is None:
        desk = AgentDesk(world.http, url, CASE_TOKEN, tell, brp_token=BRP_TOKEN, clock=world.clock)
    return await run_conformance(
        http=world.http,
        target_url=url,
        target_oin=oin,
        role=role,
        registry_url=REGISTRY,
        trust_anchor=world.anchor,
        operator_token=REGISTRY_TOKEN,
        clock=world.clock,
        kit_endpoint=f"http://{KIT_HOST}",
        serve=_serving(world, wrap),
        answer_seconds=answer_seconds,
        planner=planner,
        desk=desk,
        tell=tell,
    )


async def test_the_agent_passes_every_case_and_the_reports_list_each(
    world: RegistryNetwork, tmp_path: Path
) -> None:
    results = await _run(world)
    failures = [f"{r.case.name}: {r.reason}" for r in results if not r.passed]
    assert failures == []
    assert summary_line(results) == f"{len(GEMEENTE_CASES)} passed, 0 failed"
    assert DECISION in [case.name for case in GEMEENTE_CASES]
    write_junit(results, tmp_path / "junit.xml", target=UTRECHT)
    suite = ElementTree.parse(tmp_path / "junit.xml").getroot()  # noqa: S314 - our own file
    assert suite.get("tests") == str(len(GEMEENTE_CASES))
    assert suite.get("failures") == "0"
    names = [case.get("name") for case in suite.iter("testcase")]
    assert names == [c.name for c in GEMEENTE_CASES]
    write_html(results, tmp_path / "report.html", target=UTRECHT)
    page = (tmp_path / "report.html").read_text()
    for case in GEMEENTE_CASES:
        assert case.name in page
    # The agent acted on the follow-ups the kit sent: the lent bed is its own, a consent is gone.
    async with _service(world, "utrecht.test").database.reading() as session:
        transfers = list(await session.scalars(select(DeviceTransferRow)))
        states = set(await session.scalars(select(DossierRow.state)))
    assert [(t.direction, t.device_id, t.price) for t in transfers] == [
        ("received", "AMS-HM-2021-11873", "free")
    ]
    assert "consent-withdrawn" in states


def _service(world: RegistryNetwork, host: str) -> AgentService:
    transport = world.network.routes[host]
    assert isinstance(transport, httpx.ASGITransport)
    app = transport.app
    assert isinstance(app, FastAPI)
    service: AgentService = app.state.service
    return service


class RefusesFollowUps(httpx.AsyncBaseTransport):
    """An agent that cannot act on a consent-withdrawn, device-transfer, departure-notice or
    dossier-request."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        kind = json.loads(body).get("messageType") if body.startswith(b"{") else None
        if kind in {"consent-withdrawn", "device-transfer", "departure-notice", "dossier-request"}:
            problem = {"type": "urn:meeverhuizen:problem:message-not-handled", "status": 422}
            return httpx.Response(
                422, json=problem, headers={"Content-Type": "application/problem+json"}
            )
        rebuilt = httpx.Request(request.method, request.url, headers=request.headers, content=body)
        return await self.inner.handle_async_request(rebuilt)


async def test_an_agent_that_refuses_the_follow_ups_fails_them_with_what_came(
    world: RegistryNetwork,
) -> None:
    routes = world.network.routes
    routes["utrecht.test"] = RefusesFollowUps(routes["utrecht.test"])
    results = {r.case.name: r for r in await _run(world, answer_seconds=5.0)}
    refused = "expected 200 with a receipt, got 422 urn:meeverhuizen:problem:message-not-handled"
    for name in (
        "a consent-withdrawn after an offer gets a signed receipt",
        "a device-transfer for the bruikleen device taken over gets a signed receipt",
    ):
        assert (results[name].passed, results[name].reason) == (False, refused)
    # Refusing a transfer it cannot act on is what the protocol asks.
    assert results[
        "a device-transfer for a device the offer did not hold is message-not-handled"
    ].passed
    assert results[DECISION].passed
    # A departing gemeente that refuses every dossier-request never offers the dossier asked for.
    requested = results[
        "a dossier-request for a client in the register is answered with a dossier-offer"
    ]
    assert (requested.passed, requested.reason) == (False, refused)
    assert results[
        "a dossier-request for a gemeente the target does not serve is message-not-handled"
    ].passed


async def test_without_the_targets_api_the_kit_says_what_to_do_and_fails_in_time(
    world: RegistryNetwork,
) -> None:
    told: list[str] = []
    results = {
        r.case.name: r
        for r in await _run(world, answer_seconds=0.5, told=told, desk=OperatorDesk(told.append))
    }
    requested = results[
        "a dossier-request for a client in the register is answered with a dossier-offer"
    ]
    assert requested.reason.startswith("no dossier-offer for client 999")
    assert requested.reason.endswith("came to the kit's endpoint within 0 s")
    assert any(line.startswith("add client 999") for line in told)
    assert any(line.startswith("record the consent of client 999") for line in told)
    # Our agent decides the configured exception; the delivery waits for a person.
    assert any(
        line.startswith("record in the agent under test that the alternative for device KIT-")
        for line in told
    )
    assert any(line.startswith("let the BRP tell the agent under test that 999") for line in told)
    assert any("device_exceptions" in line for line in told)


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
    results = {result.case.name: result for result in await _run(world, answer_seconds=2.0)}
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


@pytest.mark.parametrize(
    "example",
    [
        "dossier-offer.json",
        "takeover-order.json",
        "consent-withdrawn.json",
        "device-transfer.json",
        "departure-notice.json",
        "continued-use.json",
        "alternative-delivered.json",
        "device-decision.json",
        "dossier-request.json",
        "settlement-offer.json",
        "settlement-accept.json",
    ],
)
def test_the_kit_sends_the_published_examples(example: str) -> None:
    kit_copy = REPOSITORY / "agent" / "conformance" / example
    published = REPOSITORY / "docs" / "examples" / example
    assert kit_copy.read_text(encoding="utf-8") == published.read_text(encoding="utf-8")


async def test_a_supplier_agent_passes_every_case_and_sends_its_statuses(
    registry_database_url: str, database_url: str
) -> None:
    async with registry_network(Network(), FrozenClock(START), registry_database_url) as world:
        kvk = "12345678"
        settings = agent_settings(
            database_url,
            gemeente="utrecht",
            registry_trust_anchor=world.anchor,
            scheduler_enabled=True,
        ).model_copy(
            update={
                "role": "supplier",
                "oin": oin_for_kvk(kvk),
                "kvk_number": kvk,
                "gemeentecode": None,
                "name": "Hulpmiddelen BV",
                "public_base_url": "http://supplier.test",
                # The takeover price goes out on the effective date at the deadlines' next run.
                "takeover": TakeoverSettings(deadline_interval_seconds=1.0),
            }
        )
        await world.start_agent(settings)
        planner = AgentPlanner(world.http, "http://supplier.test", CASE_TOKEN)
        supplier = ("http://supplier.test", oin_for_kvk(kvk), "supplier")
        results = await _run(world, target=supplier, planner=planner)
        arrivals = [
            (arrival.message_type, getattr(arrival.message.body, "status", None))
            for arrival in _kit_arrivals(world)
        ]
        async with _service(world, "supplier.test").database.reading() as session:
            leaving = list(await session.scalars(select(DepartingDeviceRow)))
            settlements = list(await session.scalars(select(SettlementRow)))
    assert [f"{r.case.name}: {r.reason}" for r in results if not r.passed] == []
    assert [r.case.name for r in results] == [c.name for c in cases_for("supplier")]
    # The kit received, verified and receipted each status of the planner's order.
    assert ("supplier-status", "client-contacted") in arrivals
    assert ("supplier-status", "taken-over") in arrivals
    # The departure notice is on the target's books: the device leaves its contract.
    assert [(d.device_id, d.state) for d in leaving if not d.device_id.startswith("KIT-")] == [
        ("AMS-HM-2019-04417", "leaving")
    ]
    # The kit's devices: one excepted, to collect once the alternative came; one leaving.
    assert sorted(d.state for d in leaving if d.device_id.startswith("KIT-")) == [
        "collect",
        "leaving",
    ]
    # It settled with the kit's supplier: three offers received, one made, each answered.
    assert sorted((s.direction, s.state, s.reason_code) for s in settlements) == [
        ("offered", "accepted", None),
        ("received", "accepted", None),
        ("received", "disputed", "inputs-incorrect"),
        ("received", "disputed", "method-not-agreed"),
    ]


async def test_a_supplier_with_other_contract_inputs_disputes_the_kits_offer_and_fails(
    registry_database_url: str, database_url: str
) -> None:
    async with registry_network(Network(), FrozenClock(START), registry_database_url) as world:
        kvk = "12345678"
        # A supplier whose contract has no floor: it recomputes the kit's offer to another amount.
        settings = supplier_settings(
            database_url,
            (oin_for_kvk(kvk), kvk, "Hulpmiddelen BV", "supplier"),
            floor_basis_points=0,
            deadline_interval_seconds=1.0,
        ).model_copy(update={"registry_trust_anchor": world.anchor, "scheduler_enabled": True})
        await world.start_agent(settings)
        planner = AgentPlanner(world.http, "http://supplier.test", CASE_TOKEN)
        supplier = ("http://supplier.test", oin_for_kvk(kvk), "supplier")
        results = {r.case.name: r for r in await _run(world, target=supplier, planner=planner)}
    accepted = results[
        "a correct settlement-offer for a device taken over is recomputed and accepted"
    ]
    assert not accepted.passed
    assert accepted.reason.startswith(
        "the target disputed a correct offer: inputs-incorrect (Afwijkend: floorBasisPoints; "
    )
    assert accepted.reason.endswith("and a floor of 1000 basis points")
    # A wrong amount is still disputed, which is what the case asks.
    assert results["a settlement-offer with a wrong amount is disputed as inputs-incorrect"].passed


def _kit_arrivals(world: RegistryNetwork) -> list[Arrival]:
    transport = world.network.routes[KIT_HOST]
    assert isinstance(transport, httpx.ASGITransport)
    app = transport.app
    assert isinstance(app, FastAPI)
    endpoint: KitEndpoint = app.state.endpoint
    return [arrival for arrival in endpoint.arrivals if arrival.message is not None]


class BadSignatures(httpx.AsyncBaseTransport):
    """On the way to the kit, every message's signature is spoilt: a target that signs badly."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        headers = [
            (k, _spoilt(v) if k.lower() == "nlgov-adr-payload-sig" else v)
            for k, v in request.headers.multi_items()
        ]
        spoilt = httpx.Request(request.method, request.url, headers=headers, content=body)
        return await self.inner.handle_async_request(spoilt)


def _spoilt(signature: str) -> str:
    head, middle, tail = signature.split(".")
    return f"{head}.{middle}.{'A' if tail[0] != 'A' else 'B'}{tail[1:]}"


class Unreachable(httpx.AsyncBaseTransport):
    """The kit's endpoint as a target that never answers sees it: nothing arrives."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("the target never sends", request=request)


async def test_a_decision_with_a_bad_signature_fails_with_the_kits_refusal(
    world: RegistryNetwork, tmp_path: Path
) -> None:
    results = {r.case.name: r for r in await _run(world, wrap=BadSignatures, answer_seconds=5)}
    decision = results[DECISION]
    assert not decision.passed
    assert decision.reason.startswith(
        "the kit refused the target's device-decision: 401 urn:meeverhuizen:problem:bad-signature"
    )
    write_html(list(results.values()), tmp_path / "report.html", target=UTRECHT)
    assert "bad-signature" in (tmp_path / "report.html").read_text()
    # The dossier-request the target sends on a move in is refused the same way.
    request = results["a move in reported by the BRP is asked for with a dossier-request"]
    assert request.reason.startswith(
        "the kit refused the target's dossier-request: 401 urn:meeverhuizen:problem:bad-signature"
    )


async def test_a_target_that_never_answers_fails_the_answer_case_in_time(
    world: RegistryNetwork,
) -> None:
    results = {r.case.name: r for r in await _run(world, wrap=Unreachable, answer_seconds=1)}
    decision = results[DECISION]
    assert not decision.passed
    assert decision.reason.startswith("no device-decision for dossier ")
    assert decision.reason.endswith("came to the kit's endpoint within 1 s")
    assert decision.seconds < 5
    assert results["a dossier-cancelled after an offer gets a signed receipt"].passed
    # Without the decision the kit cannot know the bed was taken over: no transfer is sent.
    transfer = results[
        "a device-transfer for the bruikleen device taken over gets a signed receipt"
    ]
    assert transfer.reason.startswith("no device-decision for dossier ")


@pytest.mark.slow
async def test_the_command_passes_an_agent_process_and_writes_both_reports(tmp_path: Path) -> None:
    # The kit's settings as dotted TOML keys (the local network gives each agent a BRP token).
    configured: dict[str, Any] = {"brp_dossier_requests": True}
    for prefix, policy in KIT_SETTINGS["device_exceptions"].items():
        for name, value in policy.model_dump().items():
            configured[f'device_exceptions."{prefix}".{name}'] = value
    async with local_network(
        tmp_path, gemeenten=(LOCAL_UTRECHT,), agent_settings=configured
    ) as network:
        utrecht = network.agents[LOCAL_UTRECHT.key]
        token = {
            "MEEVERHUIZEN_REGISTRY_OPERATOR_TOKEN": network.registry_operator_token,
            "MEEVERHUIZEN_CONFORMANCE_TARGET_TOKEN": utrecht.case_system_token,
            "MEEVERHUIZEN_CONFORMANCE_TARGET_BRP_TOKEN": utrecht.brp_token,
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "from agent.cli import main; main()", "conformance",
            "--target", utrecht.base_url, "--target-oin", LOCAL_UTRECHT.oin,
            "--kit-port", str(free_port()), "--answer-seconds", "30",
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
    assert text.rstrip().endswith(f"{len(GEMEENTE_CASES)} passed, 0 failed")
    assert "digest-mismatch" not in text  # no failure reasons
    page = (tmp_path / "conformance.html").read_text()
    assert all(case.name in page for case in GEMEENTE_CASES)
    assert (tmp_path / "conformance.xml").exists()


@asynccontextmanager
async def _served_agent(settings: AgentSettings) -> AsyncIterator[AgentSettings]:
    """An agent in this process behind a real socket at its public base URL."""
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        serve_endpoint(app, host=HOST, port=urlsplit(settings.public_base_url).port or 0),
    ):
        yield settings


async def _command(*arguments: str) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from agent.cli import main; main()", "conformance", *arguments,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), timeout=240)
    text = output.decode()
    assert process.returncode == 0, text
    return text


@pytest.mark.slow
async def test_the_kit_starts_its_own_registry_and_our_agents_pass_both_roles_over_http(
    tmp_path: Path,
) -> None:
    registry_key = generate_private_jwk("EdDSA")
    (tmp_path / "registry.pem").write_bytes(private_jwk_to_pem(registry_key))
    registry_port, gemeente_port, supplier_port = free_port(), free_port(), free_port()
    common = {
        "registry_url": f"http://{HOST}:{registry_port}",
        "registry_trust_anchor": public_jwk(registry_key),
        "peer_allow_list": [HOST],
        "scheduler_enabled": True,
    }
    gemeente = agent_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'gemeente.sqlite'}",
        gemeente="utrecht",
        public_base_url=f"http://{HOST}:{gemeente_port}",
        **common,
        **KIT_SETTINGS,
    )
    kvk = "12345678"
    supplier = agent_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'supplier.sqlite'}",
        gemeente="utrecht",
        role="supplier",
        oin=oin_for_kvk(kvk),
        kvk_number=kvk,
        gemeentecode=None,
        name="Hulpmiddelen BV",
        public_base_url=f"http://{HOST}:{supplier_port}",
        takeover=TakeoverSettings(deadline_interval_seconds=1.0),
        **common,
    )
    for name, settings in (("gemeente", gemeente), ("supplier", supplier)):
        key_file = tmp_path / f"{name}-public.json"
        key_file.write_text(json.dumps(public_jwk(settings.private_jwk())))
    own = (
        "--registry-port",
        str(registry_port),
        "--registry-key-file",
        str(tmp_path / "registry.pem"),
    )
    async with _served_agent(gemeente), _served_agent(supplier):
        gemeente_run = await _command(
            "--target", gemeente.public_base_url, "--target-oin", gemeente.oin,
            "--target-key", str(tmp_path / "gemeente-public.json"),
            "--target-gemeentecode", "0344", *own, "--work-dir", str(tmp_path / "run-gemeente"),
            "--target-token", CASE_TOKEN, "--target-brp-token", BRP_TOKEN,
            "--kit-port", str(free_port()), "--answer-seconds", "30",
            "--junit", str(tmp_path / "gemeente.xml"), "--html", str(tmp_path / "gemeente.html"),
        )  # fmt: skip
        supplier_run = await _command(
            "--target", supplier.public_base_url, "--target-oin", supplier.oin, "--role",
            "supplier", "--target-key", str(tmp_path / "supplier-public.json"),
            "--target-token", CASE_TOKEN, *own, "--work-dir", str(tmp_path / "run-supplier"),
            "--kit-port", str(free_port()), "--answer-seconds", "30",
            "--junit", str(tmp_path / "supplier.xml"), "--html", str(tmp_path / "supplier.html"),
        )  # fmt: skip
    assert f"kit registry: http://{HOST}:{registry_port}" in gemeente_run
    assert gemeente_run.rstrip().endswith(f"{len(GEMEENTE_CASES)} passed, 0 failed")
    assert f"{DECISION}: passed" in gemeente_run
    assert supplier_run.rstrip().endswith(f"{len(cases_for('supplier'))} passed, 0 failed")
    suite = ElementTree.parse(tmp_path / "supplier.xml").getroot()  # noqa: S314 - our own file
    names = {case.get("name") for case in suite.iter("testcase")}
    assert {case.name for case in cases_for("supplier")} == names


async def test_the_kits_own_endpoint_passes_every_check_of_section_7(
    registry_database_url: str,
) -> None:
    async with registry_network(Network(), FrozenClock(START), registry_database_url) as world:
        key = generate_private_jwk("EdDSA")
        operator = OperatorClient(REGISTRY, REGISTRY_TOKEN, http=world.http)
        registry = RegistryClient(REGISTRY, world.anchor, http=world.http, clock=world.clock)
        await registry.enrol(
            code=await operator.issue_enrolment_code(gemeentecode="0344"),
            oin=UTRECHT_OIN,
            endpoint=UTRECHT,
            protocol_versions=["1.0"],
            message_types=list(MESSAGE_TYPES),
            public_jwks=[public_jwk(key)],
        )
        # The kit's endpoint as the target: it receives as protocol.md section 7 prescribes.
        endpoint = KitEndpoint(UTRECHT_OIN, key, registry, world.clock)
        world.network.routes["utrecht.test"] = httpx.ASGITransport(app=endpoint.app())
        results = {r.case.name: r for r in await _run(world, answer_seconds=0.2)}
    assert [
        f"{c.name}: {results[c.name].reason}" for c in CASES if not results[c.name].passed
    ] == []
    # It only receives: it never decides, so the decision case fails, saying so.
    assert results[DECISION].reason.startswith("no device-decision for dossier ")


async def test_without_a_key_the_kit_waits_until_the_target_enrols_with_its_code(
    registry_database_url: str,
) -> None:
    async with registry_network(Network(), FrozenClock(START), registry_database_url) as world:
        operator = OperatorClient(REGISTRY, REGISTRY_TOKEN, http=world.http)
        registry = RegistryClient(REGISTRY, world.anchor, http=world.http, clock=world.clock)
        told: list[str] = []
        enrolled: list[asyncio.Task[object]] = []

        def operator_reads(line: str) -> None:
            # The target's operator reads the code from the kit and enrols the supplier agent.
            told.append(line)
            code = line.split("with code ", 1)[1].split(" ", 1)[0]
            enrolment = registry.enrol(
                code=code,
                oin=oin_for_kvk("12345678"),
                endpoint="http://supplier.test",
                protocol_versions=["1.0"],
                message_types=list(MESSAGE_TYPES),
                public_jwks=[public_jwk(generate_private_jwk("EdDSA"))],
            )
            enrolled.append(asyncio.ensure_future(enrolment))

        target = TargetEntry(oin_for_kvk("12345678"), "supplier", name="Hulpmiddelen BV")
        await enrol_target(
            registry, operator, target, endpoint=None, public_jwk=None, seconds=5,
            tell=operator_reads,
        )  # fmt: skip
        entry = await registry.participant(oin_for_kvk("12345678"))
        missing = TargetEntry(UTRECHT_OIN, "gemeente", gemeentecode="0344")
        with pytest.raises(ValueError, match=f"the target {UTRECHT_OIN} did not enrol within 0 s"):
            await enrol_target(
                registry, operator, missing, endpoint=None, public_jwk=None, seconds=0.1,
                tell=told.append,
            )  # fmt: skip
    assert entry.kind == "supplier"
    assert entry.endpoint == "http://supplier.test"
    assert told[0].startswith("enrol the agent under test in the kit's registry with code ")
    assert len(enrolled) == 1
