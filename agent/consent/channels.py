"""Channels that bring the personal consent link to the client: letter, e-mail, SMS.

Texts are Dutch at B1 level. No channel logs the link: it is a key to the client's page.
"""

from __future__ import annotations

import asyncio
import io
import os
import smtplib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from agent.errors import DeliveryFailed
from agent.settings import ConsentSettings
from registry.server_kit.dutch import dutch_date

if TYPE_CHECKING:
    from fpdf import FPDF

__all__ = [
    "ClientLetter",
    "DeliveryChannel",
    "EmailChannel",
    "LetterChannel",
    "LinkNotice",
    "NoticeKind",
    "RecordingSmsGateway",
    "SmsChannel",
    "SmsGateway",
    "channels_for",
    "configured_channels",
    "letter_pdf",
    "notice_text",
    "plain_letter_pdf",
]

NoticeKind = Literal["invitation", "new-link", "reminder", "wlz"]


@dataclass(frozen=True)
class LinkNotice:
    """What a channel sends: the link and the plain words around it."""

    dossier_id: str
    kind: NoticeKind
    link: str
    recipient_name: str
    address_lines: tuple[str, ...]
    departing_gemeente: str
    receiving_gemeente: str
    device_names: tuple[str, ...]
    answer_before: date
    email_address: str | None = None
    phone_number: str | None = None
    gemeente_phone: str | None = None
    # Whether the move has happened (the letter then goes to the new address and says so).
    moved: bool = False
    # The client's name when the notice goes to a representative (parent, guardian, mentor).
    on_behalf_of: str | None = None


_OPENINGS: dict[str, str] = {
    "invitation": "{moving} naar de gemeente {receiving}. {yours} hulpmiddelen kunnen mee "
    "verhuizen:",
    "reminder": "Wij hebben nog geen antwoord van u. Wij sturen u daarom deze herinnering. "
    "Uw hulpmiddelen kunnen met u mee verhuizen:",
    # A consulent issued a new link (lost letter, leaked link): the earlier one no longer works.
    "new-link": "U krijgt van ons een nieuwe persoonlijke link. Een eerdere link werkt niet meer. "
    "Het gaat om deze hulpmiddelen:",
}
_SUBJECTS: dict[str, str] = {
    "wlz": "Uw hulpmiddelen en uw verhuizing naar een Wlz-instelling",
    "invitation": "Uw hulpmiddelen verhuizen mee",
    "reminder": "Herinnering: uw hulpmiddelen verhuizen mee",
    "new-link": "Uw nieuwe persoonlijke link: uw hulpmiddelen verhuizen mee",
}


def _moving(notice: LinkNotice) -> str:
    who = f"{notice.on_behalf_of} gaat" if notice.on_behalf_of else "U gaat"
    if notice.moved:
        who = f"{notice.on_behalf_of} is" if notice.on_behalf_of else "U bent"
        return f"{who} verhuisd"
    return f"{who} verhuizen"


def _wlz_text(notice: LinkNotice, devices: str, call: str) -> str:
    whose = f"{notice.on_behalf_of} gaat" if notice.on_behalf_of else "U gaat"
    return (
        f"Beste {notice.recipient_name},\n\n{whose} wonen in een instelling van de Wet "
        "langdurige zorg (Wlz). Daar krijgt u hulpmiddelen via het zorgkantoor, niet via de "
        "gemeente. Daarom verhuizen deze hulpmiddelen niet mee naar een nieuwe gemeente:\n"
        f"{devices}\n\nU mag ze blijven gebruiken. Een ergotherapeut van het zorgkantoor kijkt "
        "of ze goed blijven passen. Wij regelen de overdracht met het zorgkantoor. U hoeft zelf "
        "niets te doen.\n\nOp deze persoonlijke pagina ziet u wat er gebeurt:\n"
        f"{notice.link}\n\nHeeft u vragen? {call}\n\n"
        f"Met vriendelijke groet,\nGemeente {notice.departing_gemeente}\n"
    )


def notice_text(notice: LinkNotice) -> str:
    """The letter and e-mail text (Dutch, B1)."""
    devices = "\n".join(f"- {name}" for name in notice.device_names)
    call = (
        f"Bel ons op {notice.gemeente_phone}." if notice.gemeente_phone else "Bel dan uw gemeente."
    )
    if notice.kind == "wlz":
        return _wlz_text(notice, devices, call)
    opening = _OPENINGS[notice.kind].format(
        receiving=notice.receiving_gemeente,
        moving=_moving(notice),
        yours="De" if notice.on_behalf_of else "Uw",
    )
    return (
        f"Beste {notice.recipient_name},\n\n{opening}\n{devices}\n\n"
        f"Daarvoor hebben wij uw toestemming nodig. De gemeente {notice.departing_gemeente} "
        f"stuurt dan uw gegevens naar de gemeente {notice.receiving_gemeente}.\n\n"
        f"Geef uw antwoord vóór {dutch_date(notice.answer_before)} via deze persoonlijke link:\n"
        f"{notice.link}\n\n"
        "Deel deze link niet met anderen. Zegt u nee? Dan moet u in uw nieuwe gemeente zelf een "
        f"nieuwe aanvraag doen.\n\nHeeft u vragen? Of wilt u liever bellen? {call}\n\n"
        f"Met vriendelijke groet,\nGemeente {notice.departing_gemeente}\n"
    )


@dataclass(frozen=True)
class ClientLetter:
    """A letter or e-mail without a link: what happens with the client's devices (Dutch, B1)."""

    letter_id: str
    recipient_name: str
    address_lines: tuple[str, ...]
    subject: str
    text: str
    email_address: str | None = None


class DeliveryChannel(Protocol):
    """One way to bring a link notice to a person."""

    name: str

    async def deliver(self, notice: LinkNotice) -> None:
        """Send the notice; raise :class:`agent.errors.DeliveryFailed` when it cannot go."""


class LetterChannel:
    """A printable letter: PDF with the link and a QR code, plus the same text as plain text."""

    name = "letter"

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def deliver(self, notice: LinkNotice) -> None:
        try:
            await asyncio.to_thread(self._write, notice)
        except OSError as exc:
            raise DeliveryFailed(f"letter could not be written: {type(exc).__name__}") from exc

    async def deliver_letter(self, letter: ClientLetter) -> None:
        """Write a letter without a link (PDF and plain text) for printing."""
        try:
            await asyncio.to_thread(self._write_letter, letter)
        except OSError as exc:
            raise DeliveryFailed(f"letter could not be written: {type(exc).__name__}") from exc

    def _write_letter(self, letter: ClientLetter) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        stem = self.directory / f"letter-{letter.letter_id}"
        _write_private(stem.with_suffix(".pdf"), plain_letter_pdf(letter))
        _write_private(stem.with_suffix(".txt"), letter.text.encode())

    def _write(self, notice: LinkNotice) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        # The client's letter and a representative's go to different addresses: two files.
        suffix = "-vertegenwoordiger" if notice.on_behalf_of else ""
        stem = self.directory / f"{notice.dossier_id}-{notice.kind}{suffix}"
        _write_private(stem.with_suffix(".pdf"), letter_pdf(notice))
        # The plain copy starts with the address block, as the printed letter does.
        text = "\n".join((*notice.address_lines, "", notice_text(notice)))
        _write_private(stem.with_suffix(".txt"), text.encode())


def _write_private(path: Path, content: bytes) -> None:
    # The letter holds a personal link: readable by the agent's user only.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)


def letter_pdf(notice: LinkNotice) -> bytes:
    """The letter as PDF (A4), with the link as text and as QR code."""
    # Imported here: the QR library costs memory, and only agents that print letters need it.
    import segno

    title = _SUBJECTS.get(notice.kind, _SUBJECTS["invitation"])
    pdf = _letter_page(title, notice.address_lines, notice_text(notice))
    qr = io.BytesIO()
    segno.make(notice.link, error="m").save(qr, kind="png", scale=6, border=2)
    qr.seek(0)
    pdf.ln(4)
    pdf.cell(0, 6, "Of scan deze code met uw telefoon:", new_x="LMARGIN", new_y="NEXT")
    pdf.image(qr, w=40, h=40)
    return bytes(pdf.output())


def plain_letter_pdf(letter: ClientLetter) -> bytes:
    """A letter without a link as PDF (A4)."""
    return bytes(_letter_page(letter.subject, letter.address_lines, letter.text).output())


def _letter_page(title: str, address_lines: Sequence[str], text: str) -> FPDF:
    """An A4 page: the address block, the title in bold and the text."""
    # Imported here: the PDF library costs tens of MB of memory, and only agents that print
    # letters need it.
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_title(title)
    pdf.set_lang("nl")
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    for line in (*address_lines, ""):
        pdf.cell(0, 6, line, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(10)
    pdf.set_font("helvetica", style="B", size=14)
    pdf.cell(0, 8, title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", size=12)
    pdf.multi_cell(0, 6, text)
    return pdf


class EmailChannel:
    """E-mail over SMTP (plain text, Dutch B1)."""

    name = "email"

    def __init__(self, *, host: str, port: int, sender: str, starttls: bool = False) -> None:
        self._host, self._port, self._sender, self._starttls = host, port, sender, starttls

    async def deliver(self, notice: LinkNotice) -> None:
        await self._email(notice.email_address, _SUBJECTS[notice.kind], notice_text(notice))

    async def deliver_letter(self, letter: ClientLetter) -> None:
        """Send a letter without a link as a plain-text e-mail."""
        await self._email(letter.email_address, letter.subject, letter.text)

    async def _email(self, address: str | None, subject: str, text: str) -> None:
        if address is None:
            raise DeliveryFailed("no e-mail address")
        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = address
        message["Subject"] = subject
        message.set_content(text)
        try:
            await asyncio.to_thread(self._send, message)
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryFailed(f"e-mail could not be sent: {type(exc).__name__}") from exc

    def _send(self, message: EmailMessage) -> None:
        with smtplib.SMTP(self._host, self._port, timeout=10) as smtp:
            if self._starttls:
                smtp.starttls()
            smtp.send_message(message)


class SmsGateway(Protocol):
    """An SMS provider: sends one short text to one phone number."""

    async def send(self, phone_number: str, text: str) -> None: ...


@dataclass
class RecordingSmsGateway:
    """Test double of an SMS gateway: keeps what was sent, logs nothing."""

    sent: list[tuple[str, str]] = field(default_factory=list)

    async def send(self, phone_number: str, text: str) -> None:
        self.sent.append((phone_number, text))


class SmsChannel:
    """A short SMS with the link, through a gateway."""

    name = "sms"

    def __init__(self, gateway: SmsGateway) -> None:
        self._gateway = gateway

    async def deliver(self, notice: LinkNotice) -> None:
        if notice.phone_number is None:
            raise DeliveryFailed("no phone number")
        text = (
            f"Gemeente {notice.departing_gemeente}: uw hulpmiddelen kunnen mee verhuizen. "
            f"Geef uw antwoord vóór {dutch_date(notice.answer_before)}: {notice.link}"
        )
        if notice.kind == "wlz":
            text = (
                f"Gemeente {notice.departing_gemeente}: u gaat naar een Wlz-instelling. Uw "
                f"hulpmiddelen gaan via het zorgkantoor. Lees wat er gebeurt: {notice.link}"
            )
        await self._gateway.send(notice.phone_number, text)


def channels_for(
    available: Sequence[DeliveryChannel], preferred: Sequence[str]
) -> list[DeliveryChannel]:
    """The first available channel in the person's order of preference; else a letter."""
    by_name = {channel.name: channel for channel in available}
    for name in preferred:
        if name in by_name:
            return [by_name[name]]
    return [by_name["letter"]] if "letter" in by_name else []


def configured_channels(settings: ConsentSettings) -> list[DeliveryChannel]:
    """The channels the settings configure: a letter directory and/or an SMTP server."""
    channels: list[DeliveryChannel] = []
    if settings.smtp_host is not None:
        channels.append(
            EmailChannel(
                host=settings.smtp_host,
                port=settings.smtp_port,
                sender=settings.smtp_sender,
                starttls=settings.smtp_starttls,
            )
        )
    if settings.letter_directory is not None:
        channels.append(LetterChannel(settings.letter_directory))
    return channels
