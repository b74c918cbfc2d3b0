"""Client of the registry for agents: verified, cached resolution and signed self-service.

Every answer is checked against the trust anchor (the registry's public key) before it is used:
signature (``Digest`` + ``nlgov-adr-payload-sig``), the ``resource`` it answers and its
``issuedAt``.
Verified answers are cached for their ``maxAge``; within it a lookup does no I/O at all. After it
the client revalidates (a 304 counts only with a signed ``Registry-Freshness`` statement), and
while the registry is unreachable it serves the verified cache for at most ``max_staleness``
beyond ``maxAge``, then raises :class:`~registry.errors.RegistryUnavailable`. Key answers are
kept for at most 60 s, so that a revocation is seen within a minute. With an ``AnswerStore`` the
verified answers outlive a restart: :meth:`RegistryClient.restore` takes them back, each verified
again, within the same staleness bound.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, Protocol, TypeVar
from urllib.parse import quote

import httpx

from protocol import canonicalize
from protocol.clock import Clock, SystemClock
from protocol.errors import ClockSkew, ProtocolError
from protocol.jwk import validate_public_jwk
from protocol.jws import verify_compact
from protocol.logs import log_event
from protocol.signing import (
    SIGNATURE_HEADER,
    VerificationKey,
    VerificationPolicy,
    sign_body,
    verify_body,
)
from registry.errors import (
    InvalidRegistryInput,
    MessageTypeNotSupported,
    RegistryClockSkew,
    RegistryError,
    RegistryUnavailable,
    UntrustedAnswer,
    error_for_code,
)
from registry.monitoring import DailyReport

__all__ = ["AnswerStore", "ContractedSupplier", "Participant", "RegistryClient", "StoredAnswer"]

_log = logging.getLogger("meeverhuizen.registry.client")
_T = TypeVar("_T")
_PROBLEM_PREFIX = "urn:meeverhuizen:problem:"
_GEMEENTECODE = re.compile(r"[0-9]{4}")
_OIN = re.compile(r"[0-9]{20}")
_ISO_CODE = re.compile(r"[0-9]{2}( [0-9]{2}){0,2}")
_MAX_ANSWER_AGE = timedelta(minutes=5)
# Key answers are kept for at most a minute: a revocation is seen within 60 s (docs/registry.md).
_MAX_KEY_ANSWER_AGE = timedelta(seconds=60)
# A kid the cached history does not know is asked again, at most this often per participant.
_REFETCH_INTERVAL = timedelta(seconds=5)
_MAX_ANSWER_BYTES = 4 * 1_048_576


@dataclass(frozen=True)
class Participant:
    """A gemeente or supplier as the registry publishes it."""

    oin: str | None
    kind: Literal["gemeente", "supplier"]
    name: str
    gemeentecode: str | None
    kvk_number: str | None
    endpoint: str | None
    protocol_versions: tuple[str, ...]
    message_types: tuple[str, ...]
    keys: tuple[VerificationKey, ...]
    # The protocol roles it may play, and the gemeentecodes its agent serves.
    roles: tuple[str, ...] = ()
    gemeentecodes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ContractedSupplier:
    """A supplier the gemeente contracted for an ISO code on a date."""

    oin: str
    name: str
    preference: int
    iso_prefix: str
    valid_from: date
    valid_until: date | None


@dataclass(frozen=True)
class StoredAnswer:
    """A verified answer as kept across restarts: the signed bytes and how long they count."""

    resource: str
    body: bytes
    headers: tuple[tuple[str, str], ...]
    etag: str | None
    fresh_until: datetime
    stale_until: datetime


class AnswerStore(Protocol):
    """Where a client keeps its verified answers, so that a restart does not lose them."""

    async def load(self) -> Sequence[StoredAnswer]: ...

    async def save(self, answer: StoredAnswer) -> None: ...


@dataclass
class _CacheEntry:
    """A parsed answer beside the signed answer it was read from (what the store keeps)."""

    value: Any
    answer: StoredAnswer


def _time(value: Any) -> datetime | None:
    if value is None:
        return None
    moment = datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        raise ValueError("time without zone")
    return moment.astimezone(UTC)


def _verification_key(item: Mapping[str, Any]) -> VerificationKey:
    return VerificationKey(
        jwk=item["jwk"],
        not_before=_time(item.get("notBefore")),
        not_after=_time(item.get("notAfter")),
        revoked_at=_time(item.get("revokedAt")),
    )


def _participant(data: Any) -> Participant:
    return Participant(
        oin=data["oin"],
        kind=data["kind"],
        name=data["name"],
        gemeentecode=data.get("gemeentecode"),
        kvk_number=data.get("kvkNumber"),
        endpoint=data.get("endpoint"),
        protocol_versions=tuple(data["protocolVersions"]),
        message_types=tuple(data["messageTypes"]),
        keys=tuple(_verification_key(item) for item in data["keys"]),
        roles=tuple(str(role) for role in data["roles"]),
        gemeentecodes=tuple(str(code) for code in data["gemeentecodes"]),
    )


def _keys(data: Any) -> tuple[VerificationKey, ...]:
    return tuple(_verification_key(item) for item in data)


def _suppliers(data: Any) -> tuple[ContractedSupplier, ...]:
    return tuple(
        ContractedSupplier(
            oin=item["oin"],
            name=item["name"],
            preference=int(item["preference"]),
            iso_prefix=item["isoPrefix"],
            valid_from=date.fromisoformat(item["validFrom"]),
            valid_until=date.fromisoformat(item["validUntil"]) if item["validUntil"] else None,
        )
        for item in data
    )


def _trust_keys(trust_anchor: Mapping[str, Any]) -> tuple[VerificationKey, ...]:
    # A single public JWK, or a JWK Set during a rotation of the registry key.
    jwks = trust_anchor.get("keys") if "keys" in trust_anchor else [trust_anchor]
    if not isinstance(jwks, list) or not jwks:
        raise InvalidRegistryInput("the trust anchor must be a public JWK or a JWK Set")
    try:
        return tuple(VerificationKey(jwk=validate_public_jwk(jwk)) for jwk in jwks)
    except ProtocolError as exc:
        raise InvalidRegistryInput(f"the trust anchor is not a public key: {exc.detail}") from exc


def _check(pattern: re.Pattern[str], value: str, what: str) -> str:
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        raise InvalidRegistryInput(f"{what} is malformed")
    return value


def _key_submission(key: Mapping[str, Any]) -> dict[str, Any]:
    return dict(key) if "jwk" in key else {"jwk": dict(key)}


def _format(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise InvalidRegistryInput("times must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class RegistryClient:
    """Verified and cached access to the registry for one agent."""

    def __init__(
        self,
        base_url: str,
        trust_anchor: Mapping[str, Any],
        *,
        http: httpx.AsyncClient,
        clock: Clock | None = None,
        max_staleness: timedelta = timedelta(hours=1),
        timeout: float = 5.0,
        clock_skew: timedelta = timedelta(minutes=5),
        max_entries: int = 10_000,
        answers: AnswerStore | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._trust_keys = _trust_keys(trust_anchor)
        self._http = http
        self._clock: Clock = clock or SystemClock()
        self._max_staleness = max_staleness
        self._timeout = timeout
        self._clock_skew = clock_skew
        self._max_entries = max_entries
        self._policy = VerificationPolicy(max_body_bytes=_MAX_ANSWER_BYTES, clock_skew=clock_skew)
        self._cache: dict[str, _CacheEntry] = {}
        # The registry's signed time minus this machine's clock, at the latest signed answer.
        self.clock_offset: timedelta | None = None
        self._answers = answers
        # When a cached answer was last asked again at once (``refresh``), by resource.
        self._refetched_at: dict[str, datetime] = {}
        # Told how each look-up was answered (metrics): cache-hit, fetched, revalidated, stale,
        # failed.
        self.on_resolution: Callable[[str], None] = lambda result: None

    # Resolution.

    async def gemeente(self, gemeentecode: str, *, message_type: str | None = None) -> Participant:
        """A gemeente's agent by CBS gemeentecode."""
        resource = "/v1/gemeenten/" + _check(_GEMEENTECODE, gemeentecode, "gemeentecode")
        participant: Participant = await self._resolve(resource, _participant)
        return self._supporting(participant, message_type)

    async def participant(
        self, oin: str, *, message_type: str | None = None, refresh: bool = False
    ) -> Participant:
        """A gemeente's or supplier's agent by OIN.

        ``refresh``: ask the registry again (a gemeentecode the cached answer lacks), at most
        once per five seconds per participant.
        """
        resource = "/v1/participants/" + _check(_OIN, oin, "OIN")
        if refresh:
            self._expire(resource)
        participant: Participant = await self._resolve(resource, _participant)
        return self._supporting(participant, message_type)

    async def verification_keys(
        self, oin: str, *, at: datetime | None = None
    ) -> tuple[VerificationKey, ...]:
        """Keys valid now or announced for later, or the keys that were valid ``at`` a time.

        Each key keeps its window: a signature check (``protocol.signing``) uses the one valid at
        the signing time, and answers ``key_not_valid`` for a known key outside its window
        (docs/protocol.md section 7, check 12), ``key_unknown`` only for a kid not published.
        """
        if at is None:
            participant = await self.participant(oin)
            return participant.keys
        resource = f"/v1/participants/{_check(_OIN, oin, 'OIN')}/keys?at={quote(_format(at))}"
        keys: tuple[VerificationKey, ...] = await self._resolve(resource, _keys)
        return tuple(key for key in keys if key.valid_at(at))

    async def key_history(self, oin: str, *, refresh: bool = False) -> tuple[VerificationKey, ...]:
        """Every key the participant ever published, revoked and ended ones too.

        A receiver picks the key by kid and checks it at the signing time (docs/protocol.md
        section 7, checks 11 and 12): a revoked key is then "not valid", not "unknown".
        ``refresh``: ask the registry again (a kid the cached history lacks), at most once per
        five seconds per participant.
        """
        resource = f"/v1/participants/{_check(_OIN, oin, 'OIN')}/keys"
        if refresh:
            self._expire(resource)
        keys: tuple[VerificationKey, ...] = await self._resolve(resource, _keys)
        return keys

    async def contracted_suppliers(
        self, gemeentecode: str, iso_code: str, on: date
    ) -> tuple[ContractedSupplier, ...]:
        """Suppliers contracted for ``iso_code`` on ``on``, most preferred first."""
        code = _check(_GEMEENTECODE, gemeentecode, "gemeentecode")
        iso = quote(_check(_ISO_CODE, iso_code, "ISO 9999 code"), safe="")
        resource = f"/v1/gemeenten/{code}/contracted-suppliers?isoCode={iso}&on={on.isoformat()}"
        suppliers: tuple[ContractedSupplier, ...] = await self._resolve(resource, _suppliers)
        return suppliers

    def _expire(self, resource: str) -> None:
        """Let the next look-up of ``resource`` ask the registry, unless it did a moment ago."""
        now = self._clock.now()
        last = self._refetched_at.get(resource)
        if last is not None and now - last < _REFETCH_INTERVAL:
            return
        self._refetched_at[resource] = now
        entry = self._cache.get(resource)
        if entry is not None:
            entry.answer = replace(entry.answer, fresh_until=min(entry.answer.fresh_until, now))

    @staticmethod
    def _supporting(participant: Participant, message_type: str | None) -> Participant:
        if message_type is not None and message_type not in participant.message_types:
            raise MessageTypeNotSupported(
                f"{participant.name} does not accept {message_type} messages"
            )
        return participant

    # Writes.

    async def enrol(
        self,
        *,
        code: str,
        oin: str,
        endpoint: str,
        protocol_versions: Sequence[str],
        message_types: Sequence[str],
        public_jwks: Sequence[Mapping[str, Any]],
    ) -> Participant:
        """Register this agent with the one-time code the operator issued."""
        payload: dict[str, Any] = {
            "code": code,
            "oin": oin,
            "endpoint": endpoint,
            "protocolVersions": list(protocol_versions),
            "messageTypes": list(message_types),
            "keys": [_key_submission(jwk) for jwk in public_jwks],
        }
        resource = "/v1/enrolments"
        document = await self._write(resource, canonicalize(payload), {})
        self._forget(oin)
        return _participant(document["data"])

    async def update_own_entry(
        self,
        *,
        oin: str,
        private_jwk: Mapping[str, Any],
        endpoint: str | None = None,
        add_keys: Sequence[Mapping[str, Any]] = (),
        protocol_versions: Sequence[str] | None = None,
        message_types: Sequence[str] | None = None,
        retire_keys: Mapping[str, datetime] | None = None,
        revoke_keys: Mapping[str, str] | None = None,
    ) -> Participant:
        """Change this agent's own entry with a request signed by one of its valid keys.

        ``add_keys`` are public JWKs (or ``{"jwk": ..., "notBefore": ..., "notAfter": ...}``),
        ``retire_keys`` maps a kid to the end of its validity (rotation overlap), ``revoke_keys``
        maps a kid to a revocation reason. A fresh request id and time make replay useless.
        """
        now = self._clock.now()
        change: dict[str, Any] = {
            "requestId": uuid.uuid4().hex,
            "requestedAt": _format(now),
            "oin": _check(_OIN, oin, "OIN"),
            "addKeys": [_key_submission(jwk) for jwk in add_keys],
            "retireKeys": {kid: _format(end) for kid, end in (retire_keys or {}).items()},
            "revokeKeys": dict(revoke_keys or {}),
        }
        optional = {
            "endpoint": endpoint,
            "protocolVersions": list(protocol_versions) if protocol_versions else None,
            "messageTypes": list(message_types) if message_types else None,
        }
        change.update({name: value for name, value in optional.items() if value is not None})
        signed = sign_body(canonicalize(change), private_jwk, signing_time=now)
        resource = f"/v1/participants/{oin}/entry-changes"
        document = await self._write(resource, signed.body, signed.headers())
        self._forget(oin)
        return _participant(document["data"])

    async def send_daily_report(
        self, report: DailyReport, *, private_jwk: Mapping[str, Any]
    ) -> None:
        """Send this organisation's counts for one day, signed with one of its valid keys.

        The registry refuses a report for another organisation, one of another kind than the
        sender, and one older than the report it holds for that day (``registry.monitoring``).
        """
        document = report.model_dump(mode="json", by_alias=True)
        signed = sign_body(canonicalize(document), private_jwk, signing_time=self._clock.now())
        resource = f"/v1/participants/{_check(_OIN, report.oin, 'OIN')}/daily-reports"
        await self._write(resource, signed.body, signed.headers())

    # Transport, verification and cache.

    async def _resolve(self, resource: str, parse: Callable[[Any], _T]) -> _T:
        entry = self._cache.get(resource)
        if entry is not None and self._clock.now() < entry.answer.fresh_until:
            self.on_resolution("cache-hit")
            value: _T = entry.value
            return value
        return await self._revalidate(resource, parse, entry)

    async def _revalidate(
        self, resource: str, parse: Callable[[Any], _T], entry: _CacheEntry | None
    ) -> _T:
        headers = {"Accept": "application/json"}
        if entry is not None and entry.answer.etag is not None:
            headers["If-None-Match"] = entry.answer.etag
        try:
            response = await self._http.get(
                self._base_url + resource, headers=headers, timeout=self._timeout
            )
        except httpx.HTTPError as exc:
            stale: _T = self._stale(resource, entry, exc)
            return stale
        if response.status_code >= 500:
            stale = self._stale(resource, entry, None)
            return stale
        if response.status_code == 304 and entry is not None:
            self.on_resolution("revalidated")
            # Kept again: the extended staleness bound must outlive a restart too.
            await self._persist(self._refresh(resource, entry, response))
            value: _T = entry.value
            return value
        document = self._verified(resource, response)
        if response.status_code != 200:
            self._cache.pop(resource, None)
            raise self._problem(document)
        value = self._parsed(parse, document["data"])
        self.on_resolution("fetched")
        signed = (response.content, _signature_headers(response))
        stored = self._store(resource, value, response.headers.get("etag"), document, signed)
        self._alias(resource, value)
        await self._persist(stored)
        return value

    def _stale(self, resource: str, entry: _CacheEntry | None, exc: Exception | None) -> Any:
        now = self._clock.now()
        if entry is not None and now < entry.answer.stale_until:
            _log.warning("registry_stale_answer_used", extra={"resource": resource})
            self.on_resolution("stale")
            return entry.value
        self.on_resolution("failed")
        reason = type(exc).__name__ if exc is not None else "server error"
        raise RegistryUnavailable(
            f"registry unreachable ({reason}) and no verified answer within the staleness bound"
        ) from exc

    def _verified(self, resource: str, response: httpx.Response) -> dict[str, Any]:
        """The signed document of an answer, after every check; else UntrustedAnswer."""
        now = self._clock.now()
        headers = response.headers.multi_items()
        try:
            document = verify_body(
                response.content, headers, self._trust_keys, policy=self._policy, now=now
            )
        except ClockSkew:
            # Correctly signed but at a time far from ours: measure how far, for the operator.
            document = self._verified_at_any_time(response.content, headers)
            self._check_statement(resource, document, now)
            raise RegistryClockSkew(
                "the registry signed its answer at a time too far from this machine's clock"
            ) from None
        except ProtocolError as exc:
            raise UntrustedAnswer(f"registry answer not trusted: {exc.code}") from exc
        self._check_statement(resource, document, now)
        return document

    def _verified_at_any_time(self, body: bytes, headers: list[tuple[str, str]]) -> dict[str, Any]:
        try:
            return verify_body(body, headers, self._trust_keys, policy=self._policy, now=None)
        except ProtocolError as exc:
            raise UntrustedAnswer(f"registry answer not trusted: {exc.code}") from exc

    def _check_statement(self, resource: str, document: Mapping[str, Any], now: datetime) -> None:
        if document.get("resource") != resource:
            raise UntrustedAnswer("registry answer is for another question")
        try:
            issued_at = _time(document.get("issuedAt"))
        except (TypeError, ValueError) as exc:
            raise UntrustedAnswer("registry answer has no valid issuedAt") from exc
        if issued_at is None:
            raise UntrustedAnswer("registry answer has no valid issuedAt")
        self.clock_offset = issued_at - now
        if abs(self.clock_offset) > self._clock_skew:
            seconds = int(self.clock_offset.total_seconds())
            log_event(
                _log,
                "registry_clock_skew",
                level=logging.WARNING,
                count=seconds,
                reason="the registry's signed time minus this machine's clock, in seconds; "
                "check the clock (NTP), or the answer was replayed",
            )
            raise RegistryClockSkew(
                f"the registry's signed time differs from this machine's clock by {seconds} s "
                f"(allowed {int(self._clock_skew.total_seconds())} s): check the clock (NTP)"
            )

    def _refresh(self, resource: str, entry: _CacheEntry, response: httpx.Response) -> StoredAnswer:
        """Extend a cached answer only with a signed freshness statement for its ETag."""
        token = response.headers.get("registry-freshness")
        if token is None:
            raise UntrustedAnswer("304 without a signed freshness statement")
        statement = self._freshness(token)
        kept = entry.answer
        if statement.get("etag") != kept.etag:
            raise UntrustedAnswer("freshness statement is for another version")
        self._check_statement(resource, statement, self._clock.now())
        # Renewed under the resource its signed body answers; an alias (the same participant
        # by OIN or by gemeentecode) follows, so a kept answer always verifies on restore.
        raw = (kept.body, kept.headers)
        stored = self._store(kept.resource, entry.value, kept.etag, statement, raw)
        self._alias(kept.resource, entry.value)
        return stored

    def _freshness(self, token: str) -> dict[str, Any]:
        for key in self._trust_keys:
            try:
                payload = verify_compact(token, key.jwk)
            except ProtocolError:
                continue
            try:
                statement = json.loads(payload)
            except ValueError as exc:
                raise UntrustedAnswer("freshness statement is not JSON") from exc
            if isinstance(statement, dict):
                return statement
        raise UntrustedAnswer("freshness statement is not signed by the registry")

    def _store(
        self,
        resource: str,
        value: Any,
        etag: str | None,
        signed: Mapping[str, Any],
        raw: tuple[bytes, tuple[tuple[str, str], ...]],
    ) -> StoredAnswer:
        now = self._clock.now()
        issued_at = _time(signed["issuedAt"]) or now
        limit = _MAX_KEY_ANSWER_AGE if resource.endswith("/keys") else _MAX_ANSWER_AGE
        max_age = min(timedelta(seconds=int(signed.get("maxAge", 0))), limit)
        fresh_until = min(issued_at, now) + max_age
        answer = StoredAnswer(
            resource=resource,
            body=raw[0],
            headers=raw[1],
            etag=etag,
            fresh_until=fresh_until,
            stale_until=fresh_until + self._max_staleness,
        )
        self._keep(resource, _CacheEntry(value=value, answer=answer))
        return answer

    def _keep(self, resource: str, entry: _CacheEntry) -> None:
        if len(self._cache) >= self._max_entries and resource not in self._cache:
            self._cache.pop(next(iter(self._cache)))
        self._cache[resource] = entry

    # Verified answers across restarts.

    async def restore(self) -> int:
        """Take back the answers kept in the answer store that are still within the staleness
        bound, each verified again against the trust anchor; returns how many."""
        if self._answers is None:
            return 0
        now = self._clock.now()
        restored = 0
        for stored in await self._answers.load():
            if stored.stale_until <= now or stored.resource in self._cache:
                continue
            value = self._restored_value(stored)
            if value is None:
                continue
            self._keep(stored.resource, _CacheEntry(value=value, answer=stored))
            self._alias(stored.resource, value)
            restored += 1
        return restored

    def _restored_value(self, stored: StoredAnswer) -> Any:
        parse = _parser(stored.resource)
        if parse is None:
            return None
        try:
            document = verify_body(
                stored.body, stored.headers, self._trust_keys, policy=self._policy, now=None
            )
            if document.get("resource") != stored.resource:
                return None
            return parse(document["data"])
        except (ProtocolError, KeyError, TypeError, ValueError):
            _log.warning("registry_stored_answer_refused", extra={"resource": stored.resource})
            return None

    async def _persist(self, answer: StoredAnswer) -> None:
        """Keep a newly verified or extended answer; a cache hit writes nothing."""
        if self._answers is None:
            return
        try:
            await self._answers.save(answer)
        except Exception:  # keeping an answer must never fail a look-up
            _log.warning("registry_answer_not_kept", extra={"resource": answer.resource})

    @staticmethod
    def _parsed(parse: Callable[[Any], _T], data: Any) -> _T:
        try:
            return parse(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise UntrustedAnswer("registry answer does not have the expected shape") from exc

    @staticmethod
    def _problem(document: Mapping[str, Any]) -> RegistryError:
        problem_type = str(document.get("type", ""))
        error_class = error_for_code(problem_type.removeprefix(_PROBLEM_PREFIX))
        return error_class(str(document.get("detail") or document.get("title") or problem_type))

    async def _write(
        self, resource: str, body: bytes, headers: Mapping[str, str]
    ) -> dict[str, Any]:
        request_headers = {"Content-Type": "application/json", **headers}
        try:
            response = await self._http.post(
                self._base_url + resource,
                content=body,
                headers=request_headers,
                timeout=self._timeout,
            )
        except httpx.HTTPError as exc:
            raise RegistryUnavailable(f"registry unreachable ({type(exc).__name__})") from exc
        if response.status_code >= 500 and SIGNATURE_HEADER not in response.headers:
            raise RegistryUnavailable(f"registry answered {response.status_code}")
        document = self._verified(resource, response)
        if response.status_code not in (200, 201):
            raise self._problem(document)
        return document

    def _alias(self, resource: str, value: Any) -> None:
        """A participant found by gemeentecode is also known by OIN, and the other way round."""
        if not isinstance(value, Participant):
            return
        aliases = [f"/v1/participants/{value.oin}" if value.oin else None]
        if value.gemeentecode is not None:
            aliases.append(f"/v1/gemeenten/{value.gemeentecode}")
        for alias in aliases:
            if alias is not None and alias != resource:
                self._cache[alias] = self._cache[resource]

    def _forget(self, oin: str) -> None:
        """Drop cached answers about ``oin`` after this client changed its entry."""
        stale = [
            resource
            for resource, entry in self._cache.items()
            if oin in resource or getattr(entry.value, "oin", None) == oin
        ]
        for resource in stale:
            del self._cache[resource]


def _signature_headers(response: httpx.Response) -> tuple[tuple[str, str], ...]:
    return tuple(
        (name, value)
        for name, value in response.headers.multi_items()
        if name.lower() in ("digest", SIGNATURE_HEADER.lower())
    )


def _parser(resource: str) -> Callable[[Any], Any] | None:
    """How to read the data of a stored answer, by the kind of question it answered."""
    path = resource.split("?", 1)[0]
    if path.endswith("/contracted-suppliers"):
        return _suppliers
    if path.endswith("/keys"):
        return _keys
    if path.startswith(("/v1/participants/", "/v1/gemeenten/")):
        return _participant
    return None
