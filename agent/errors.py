"""Errors raised by the agent, each with a stable machine code and one problem+json type.

The codes map to ``urn:meeverhuizen:problem:<code>`` (see ``docs/agent.md``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from protocol.errors import SIGNATURE_CHALLENGE, ProblemError

__all__ = [
    "AgentError",
    "ClockSkewWithRegistry",
    "ConsentByWrongPerson",
    "ConsentMissing",
    "DecisionNotChangeable",
    "DeliveryFailed",
    "DeviceTakenOver",
    "DirectoryUnavailable",
    "DossierUnknown",
    "EventBatchTooLarge",
    "EventInvalid",
    "IdentifierReused",
    "IllegalTransition",
    "ImportFailed",
    "ImportProblem",
    "MediaTypeUnsupported",
    "MessageConflict",
    "MessageNotHandled",
    "NotReady",
    "NothingToMove",
    "OrderStatusRefused",
    "OrderUnknown",
    "OrganisationNotHosted",
    "OutboxMessageUnknown",
    "ProvisionUnknown",
    "ReceiptInvalid",
    "ReceiverNotConnected",
    "SenderNotPermitted",
    "SenderUnknown",
    "SettlementAnswerInvalid",
    "SettlementNotOpen",
    "SettlementUnknown",
    "StorageConflict",
    "StorageUnavailable",
    "TaskNotOpen",
    "TaskUnknown",
    "Unauthorised",
    "WrongRole",
    "registry_failure",
]


class AgentError(ProblemError):
    """Base class of every agent error."""

    code = "agent_error"
    title = "Agent error"


class Unauthorised(AgentError):
    code = "unauthorised"
    title = "A valid bearer token with the needed role is required"
    status = 401

    @property
    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="meeverhuizen-agent"'}


class MessageConflict(AgentError):
    code = "conflict"
    title = "A message with this id but other content was received before"
    status = 409


class IdentifierReused(AgentError):
    code = "identifier_reused"
    title = "An id in this message was used by an earlier message for something else"
    status = 409


class IllegalTransition(AgentError):
    code = "illegal_transition"
    title = "The dossier cannot make this state change"
    status = 409


class DecisionNotChangeable(AgentError):
    code = "decision_not_changeable"
    title = "The decision for this device cannot be changed in this dossier now"
    status = 409


class DeviceTakenOver(AgentError):
    code = "device_taken_over"
    title = "The device was taken over: its decision can no longer change"
    status = 409


class DossierUnknown(AgentError):
    code = "unknown_dossier"
    title = "No such dossier"
    status = 404


class ProvisionUnknown(AgentError):
    code = "unknown_provision"
    title = "The client or device is not in the register of current provisions"
    status = 404


class NothingToMove(AgentError):
    code = "nothing_to_move"
    title = "The client has no movable device, so no dossier is started"
    status = 422


class ConsentMissing(AgentError):
    code = "consent_missing"
    title = "No consent record covers the personal data to be sent"
    status = 409


class ConsentByWrongPerson(AgentError):
    code = "consent_by_wrong_person"
    title = "A client under 16 does not consent alone; a parent or guardian answers"
    status = 409


class DeliveryFailed(AgentError):
    code = "delivery_failed"
    title = "The personal link could not be sent by this channel"
    status = 502


class MessageNotHandled(AgentError):
    code = "message_not_handled"
    title = "This agent does not handle this message here"
    status = 422


class SenderUnknown(AgentError):
    code = "sender_unknown"
    title = "The sender is not a participant known to the registry"
    status = 401
    challenge = SIGNATURE_CHALLENGE


class SenderNotPermitted(AgentError):
    # docs/protocol.md section 7, check 17: identity binds role, territory and dossier.
    code = "sender_not_permitted"
    title = "The registry does not let the sender act in this role, gemeente or dossier"
    status = 403


class DirectoryUnavailable(AgentError):
    code = "registry_unavailable"
    title = "The registry cannot be reached; try again later"
    status = 503


class StorageUnavailable(AgentError):
    code = "storage_unavailable"
    title = "The agent cannot use its database now (disk full, read-only or down)"
    status = 503


class StorageConflict(StorageUnavailable):
    """PostgreSQL aborted a transaction for a concurrent one (a deadlock, a serialization failure).

    The database works; the same work done again succeeds (:meth:`Database.retrying`).
    """


class OrganisationNotHosted(AgentError):
    # agent.hosting: a request for a host name that no hosted organisation has.
    code = "organisation_not_hosted"
    title = "No organisation hosted here answers at this host name"
    status = 404


class ClockSkewWithRegistry(AgentError):
    code = "clock_skew_with_registry"
    title = "This agent's clock differs too much from the registry's signed time; set it right"
    status = 503


def registry_failure(error: ProblemError) -> AgentError:
    """The agent's answer when a registry look-up failed: a clock that is off, or unreachable."""
    if error.code == "registry_clock_skew":  # registry.errors.RegistryClockSkew
        return ClockSkewWithRegistry(error.detail)
    return DirectoryUnavailable(error.detail)


class ReceiverNotConnected(AgentError):
    code = "receiver_not_connected"
    title = "The receiving gemeente has no agent in the registry yet; handle this move by hand"
    status = 409


class EventInvalid(AgentError):
    code = "invalid_event"
    title = "A CloudEvent in the request is malformed; nothing of the request was stored"
    status = 400


class EventBatchTooLarge(AgentError):
    code = "event_batch_too_large"
    title = "The batch holds more CloudEvents than allowed; nothing was stored"
    status = 413


class MediaTypeUnsupported(AgentError):
    code = "unsupported_media_type"
    title = "The request body has a media type this endpoint does not take"
    status = 415


class OutboxMessageUnknown(AgentError):
    code = "unknown_outbox_message"
    title = "No such message in the outbox, or it is not dead"
    status = 404


class TaskUnknown(AgentError):
    code = "unknown_task"
    title = "No such task"
    status = 404


class TaskNotOpen(AgentError):
    code = "task_not_open"
    title = "The task is closed, or taken by someone else"
    status = 409


class OrderUnknown(AgentError):
    code = "unknown_order"
    title = "No such takeover order"
    status = 404


class OrderStatusRefused(AgentError):
    code = "order_status_refused"
    title = "This status cannot be recorded for the order in its present state"
    status = 409


class SettlementUnknown(AgentError):
    code = "unknown_settlement"
    title = "No such takeover price offer"
    status = 404


class SettlementAnswerInvalid(AgentError):
    code = "invalid_settlement_answer"
    title = "A dispute needs a known reason code and a reason text"
    status = 400


class SettlementNotOpen(AgentError):
    code = "settlement_not_open"
    title = "This takeover price offer does not wait for a planner's answer"
    status = 409


class WrongRole(AgentError):
    code = "wrong_role"
    title = "This action belongs to another kind of agent (gemeente or supplier)"
    status = 409


class ReceiptInvalid(AgentError):
    code = "receipt_invalid"
    title = "The receiver's answer is not a valid receipt for the message sent"
    status = 502


class NotReady(AgentError):
    code = "not_ready"
    title = "The agent is not ready: a readiness check fails"
    status = 503


@dataclass(frozen=True)
class ImportProblem:
    """One bad row of an import: where it is and what is wrong."""

    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


class ImportFailed(AgentError):
    code = "import_failed"
    title = "The import was refused; nothing of it was applied"
    status = 400

    def __init__(self, problems: Sequence[ImportProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(str(problem) for problem in self.problems))
