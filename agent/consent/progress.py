"""What the client reads per device after the decision: what happened, what happens next.

Dutch at B1 level, whole sentences, naming the device, the supplier and the gemeente. The
handover is "klaar" only when every device the client said yes to is with the client under the
new gemeente, or a person of the new gemeente works on it (docs/consent.md, "Status page").
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from agent.consent.page import ClientPage, DeviceLine
from registry.server_kit.dutch import dutch_date

__all__ = ["device_sentence", "handover_done", "progress_events"]

# The supplier's reasons for a problem, as the client reads them.
_PROBLEMS: Final = {
    "client-unreachable": "De leverancier kon u niet bereiken.",
    "device-not-found": "De leverancier kon het hulpmiddel niet vinden.",
    "device-unsafe": "De leverancier denkt dat het hulpmiddel niet veilig is.",
    "not-contracted": "De leverancier mag dit hulpmiddel niet overnemen.",
    "no-capacity": "De leverancier heeft op dit moment geen tijd.",
}
_KEEP_USING: Final = "U mag het hulpmiddel gewoon blijven gebruiken."


def device_sentence(page: ClientPage, device: DeviceLine) -> str | None:
    """What happened to a device taken over and who acts next; None for other devices."""
    if device.outcome != "take-over":
        return None
    progress, gemeente = device.progress, page.receiving_gemeente
    supplier = device.supplier_name or "de leverancier"
    phone = f" (telefoon {device.supplier_phone})" if device.supplier_phone else ""
    someone = f"Een medewerker van de gemeente {gemeente} {_call(page)}"
    if progress is not None and progress.state == "taken-over" and progress.taken_over_on:
        return (
            f"Uw {device.name} is op {dutch_date(progress.taken_over_on)} overgenomen door de "
            f"gemeente {gemeente}. U houdt het gewoon. Is er iets kapot of heeft u een vraag? "
            f"Bel dan {supplier}{phone}."
        )
    if progress is not None and progress.state == "client-contacted" and progress.contacted_on:
        return (
            f"Uw {device.name} gaat mee. {supplier}{phone} heeft op "
            f"{dutch_date(progress.contacted_on)} contact met u gehad. {supplier} regelt nu de "
            f"overname met de gemeente {gemeente}. {_KEEP_USING}"
        )
    if progress is not None and progress.state == "contact-overdue" and progress.contact_before:
        return (
            f"{supplier} moest uiterlijk op {dutch_date(progress.contact_before)} contact met u "
            f"opnemen over uw {device.name}. Dat is niet gebeurd. {someone} "
            f"zorgt dat het alsnog gebeurt. {_KEEP_USING}"
        )
    if progress is not None and progress.state == "problem":
        problem = _PROBLEMS.get(progress.reason_code or "", "De leverancier meldt een probleem.")
        safety = (
            f"Twijfelt u of het veilig is? Gebruik het dan niet en bel de gemeente {gemeente}."
            if progress.reason_code == "device-unsafe"
            else _KEEP_USING
        )
        return (
            f"Er is een probleem bij de overname van uw {device.name}. {problem} {someone} "
            f"lost het op. {safety}"
        )
    if progress is not None and progress.state == "refused":
        return (
            f"Geen leverancier van de gemeente {gemeente} kan uw {device.name} overnemen. "
            f"{someone} zoekt een oplossing. {_KEEP_USING}"
        )
    contact_before = (
        progress.contact_before if progress is not None else None
    ) or page.supplier_contact_before
    if device.supplier_name is not None and contact_before is not None:
        return (
            f"Uw {device.name} gaat mee. {supplier}{phone} is de leverancier van de "
            f"gemeente {gemeente}. {supplier} neemt uiterlijk op "
            f"{dutch_date(contact_before)} contact met u op."
        )
    if device.rented:
        return (
            f"Uw {device.name} gaat mee. De gemeente {gemeente} zoekt nog een leverancier die "
            "het overneemt. De gemeente belt u daarover."
        )
    return (
        f"Uw {device.name} gaat mee. U mag het gewoon blijven gebruiken. De gemeente "
        f"{gemeente} neemt het over."
    )


def _call(page: ClientPage) -> str:
    if page.receiving_phone:
        return f"(telefoon {page.receiving_phone}) belt u en"
    return "belt u en"


def handover_done(page: ClientPage) -> bool:
    """Every device the client said yes to is with them under the new gemeente, or has a person.

    A device taken over with a supplier's order is done once the supplier took it over, or
    when a person of the new gemeente works on it (a problem, a refusal, a missed contact
    date); a device without an order once the decision is there.
    """
    for device in page.devices:
        if not device.movable or not device.consented:
            continue
        if device.outcome is None:
            return False
        if device.outcome != "take-over":
            continue
        # The latest progress wins over what the decision said of the device.
        progress = device.progress
        if progress is not None:
            if progress.state != "taken-over" and progress.follow_up != "gemeente-task":
                return False
        elif device.follow_up != "gemeente-task" and (device.supplier_name or device.rented):
            return False
    return True


def progress_events(page: ClientPage) -> list[tuple[datetime, str]]:
    """The latest progress of each device, as lines of the client's timeline."""
    events = []
    for device in page.devices:
        progress = device.progress
        if progress is None or device.outcome != "take-over":
            continue
        supplier = progress.supplier.name if progress.supplier else "De leverancier"
        texts = {
            "contact-planned": f"{supplier} heeft de opdracht voor uw {device.name} gekregen.",
            "client-contacted": f"{supplier} heeft contact met u gehad over uw {device.name}.",
            "taken-over": f"De gemeente {page.receiving_gemeente} heeft uw {device.name} "
            "overgenomen.",
            "contact-overdue": f"{supplier} heeft niet op tijd contact met u opgenomen over uw "
            f"{device.name}.",
            "problem": f"{supplier} meldt een probleem bij de overname van uw {device.name}.",
            "refused": f"Geen leverancier kan uw {device.name} overnemen.",
        }
        events.append((progress.changed_at, texts[progress.state]))
    return sorted(events)
