"""Delivery channels of the personal link: e-mail over a real local SMTP server,
the letter as PDF with QR code, SMS through a gateway interface."""

from __future__ import annotations

import asyncio
import email
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from agent.consent.channels import (
    EmailChannel,
    LetterChannel,
    LinkNotice,
    RecordingSmsGateway,
    SmsChannel,
    channels_for,
    letter_pdf,
)
from agent.errors import DeliveryFailed
from tests.conftest import free_port

LINK = "http://utrecht.test/link/abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
NOTICE = LinkNotice(
    dossier_id="0b8f8c4e-8a3c-4a9e-9a53-4f1a3f1d2c10",
    kind="invitation",
    link=LINK,
    recipient_name="J. Jansen",
    address_lines=("J. Jansen", "Oudegracht 12", "3511AB Utrecht"),
    departing_gemeente="Utrecht",
    receiving_gemeente="Amsterdam",
    device_names=("Scootmobiel, vier wielen", "Hoog-laagbed"),
    answer_before=date(2025, 3, 31),
    email_address="j.jansen@example.nl",
    phone_number="+31 6 12345678",
)


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(envelope.content)
        return "250 OK"


async def test_email_goes_through_a_real_smtp_server() -> None:
    inbox = _Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        channel = EmailChannel(host="127.0.0.1", port=port, sender="gemeente@utrecht.example")
        await channel.deliver(NOTICE)
    finally:
        controller.stop()
    assert len(inbox.messages) == 1
    message = email.message_from_bytes(inbox.messages[0])
    assert message["To"] == "j.jansen@example.nl"
    body = message.get_payload(decode=True).decode()
    assert LINK in body
    assert "Scootmobiel" in body
    assert "nieuwe aanvraag" in body


async def test_email_to_an_unreachable_server_is_a_delivery_failure() -> None:
    channel = EmailChannel(host="127.0.0.1", port=free_port(), sender="a@b.example")
    with pytest.raises(DeliveryFailed) as raised:
        await channel.deliver(NOTICE)
    assert LINK not in raised.value.detail


def test_letter_is_a_pdf_with_the_link(tmp_path: Path) -> None:
    pdf = letter_pdf(NOTICE)
    assert pdf.startswith(b"%PDF-")
    asyncio.run(LetterChannel(tmp_path).deliver(NOTICE))
    written = sorted(path.name for path in tmp_path.iterdir())
    assert written == [f"{NOTICE.dossier_id}-invitation.pdf", f"{NOTICE.dossier_id}-invitation.txt"]
    text = (tmp_path / written[1]).read_text()
    assert LINK in text
    assert (tmp_path / written[0]).stat().st_mode & 0o077 == 0


async def test_sms_goes_through_the_gateway_interface() -> None:
    gateway = RecordingSmsGateway()
    await SmsChannel(gateway).deliver(NOTICE)
    assert gateway.sent == [("+31 6 12345678", gateway.sent[0][1])]
    assert LINK in gateway.sent[0][1]


def test_the_preferred_available_channel_is_chosen() -> None:
    letter, sms = LetterChannel(Path("/nonexistent")), SmsChannel(RecordingSmsGateway())
    assert channels_for([letter, sms], ["email", "sms"]) == [sms]
    assert channels_for([letter, sms], ["email"]) == [letter]
    assert channels_for([sms], ["email"]) == []
