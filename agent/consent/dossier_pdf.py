"""The dossier as a PDF, for a receiving gemeente without an agent: what the client consented to.

A consulent sends it by secure mail. It holds exactly what the offer would hold: the consented
devices and kinds of data, the new address and move date, and who consented when and how.
"""

from __future__ import annotations

from datetime import date

from agent.register.models import RegisterClient
from agent.register.names import device_name, person_name
from agent.storage.tables import ConsentRow
from registry.server_kit.dutch import dutch_date

__all__ = ["dossier_pdf", "dossier_pdf_lines"]

_KINDS = {
    "identity": "naam en burgerservicenummer",
    "address": "nieuw adres",
    "devices": "gegevens van de hulpmiddelen",
    "indicatie": "indicatie en beschikking",
    "functional-information": "functionele en medische informatie",
}


def dossier_pdf_lines(
    *,
    client: RegisterClient,
    consent: ConsentRow,
    new_address: dict[str, str | int],
    move_date: date,
    departing_gemeente: str,
    receiving_gemeente: str,
) -> list[str]:
    """The dossier's lines (Dutch): the client, the move, the consent and each consented device."""
    kinds = [_KINDS.get(kind, kind) for kind in consent.data_kinds]
    who = (
        "de cliënt zelf"
        if consent.granted_by == "client"
        else (f"{consent.representative_name or 'de vertegenwoordiger'} (vertegenwoordiger)")
    )
    street = f"{new_address.get('street', '')} {new_address.get('houseNumber', '')}".strip()
    lines = [
        f"Van: gemeente {departing_gemeente}. Aan: gemeente {receiving_gemeente}.",
        "",
        f"Cliënt: {person_name(client.name)}",
        f"Burgerservicenummer: {client.bsn}",
        f"Nieuw adres: {street}, {new_address.get('postalCode', '')} {new_address.get('city', '')}",
        f"Verhuisdatum: {dutch_date(move_date)}",
        "",
        f"Toestemming gegeven door {who} op {dutch_date(consent.granted_at.date())} "
        f"({consent.channel}).",
        f"De toestemming geldt voor: {', '.join(kinds)}.",
        "",
        "Hulpmiddelen die mee verhuizen:",
    ]
    by_id = {device.device_id: device for device in client.devices}
    for device_id in consent.device_ids:
        device = by_id.get(device_id)
        if device is None:
            continue
        details = [f"ISO {device.iso_code}", f"nummer {device.device_id}"]
        details += [part for part in (device.brand, device.model, device.serial_number) if part]
        lines.append(f"- {device_name(device.iso_code, device.description)}: {', '.join(details)}")
        lines.append(
            f"  Eigendom: {device.ownership}. Maatwerk: {'ja' if device.custom_made else 'nee'}."
        )
    if "indicatie" in consent.data_kinds and client.indicatie is not None:
        indicatie = client.indicatie
        end = dutch_date(indicatie.end_date) if indicatie.end_date else "geen einddatum"
        lines += [
            "",
            f"Indicatie: {indicatie.legal_basis}, beschikking {indicatie.beschikking_reference}, "
            f"geldig van {dutch_date(indicatie.start_date)} tot {end}.",
        ]
    return lines


def dossier_pdf(lines: list[str], *, title: str) -> bytes:
    """The lines as an A4 PDF."""
    # Imported here, like the letters: only agents that print need the PDF library.
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_title(title)
    pdf.set_lang("nl")
    pdf.add_page()
    pdf.set_font("helvetica", style="B", size=14)
    pdf.cell(0, 8, title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", size=11)
    for line in lines:
        pdf.multi_cell(0, 6, line or " ", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
