"""Letters reach the right people at the right address: before and after the move, and a
representative at their own address."""

from __future__ import annotations

import json
from pathlib import Path

from agent.consent.channels import LetterChannel
from agent.core.views import DossierStart
from tests.agent.conftest import (
    CLIENT_BSN,
    DATA,
    MENTOR,
    MOVE_DATE,
    NEW_ADDRESS,
    START,
    Agents,
    RecordingChannel,
)


async def _start(agents: Agents, move_date: object = MOVE_DATE) -> str:
    clients = json.loads((DATA / "clients.json").read_text("utf-8"))
    client = clients[0] | {"representative": MENTOR}
    await agents.departing.import_provisions(json.dumps([client]).encode(), "json")
    view = await agents.departing.start_dossier(
        DossierStart.model_validate(
            {
                "bsn": CLIENT_BSN,
                "moveDate": str(move_date),
                "newAddress": NEW_ADDRESS.model_dump(mode="json", by_alias=True),
            }
        )
    )
    return view.dossier_id


async def test_before_the_move_the_client_gets_the_letter_at_home_and_the_mentor_at_theirs(
    agents: Agents, letters: RecordingChannel
) -> None:
    await _start(agents)
    client, mentor = letters.notices
    assert client.address_lines == ("J. Jansen", "Oudegracht 12", "3511AB Utrecht")
    assert mentor.address_lines == ("A. Bakker", "Nieuwegracht 3", "3512LC Utrecht")
    assert mentor.on_behalf_of == "J. Jansen"
    assert client.moved is False


async def test_after_the_move_the_client_gets_the_letter_at_the_new_address(
    agents: Agents, letters: RecordingChannel, tmp_path: Path
) -> None:
    # The BRP reported the move a week after it happened.
    dossier_id = await _start(agents, START.date().replace(day=1))
    client, mentor = letters.notices
    street = f"{NEW_ADDRESS.street} {NEW_ADDRESS.house_number}"
    assert client.address_lines[1] == street
    assert client.moved is True
    # The mentor still gets it at their own address.
    assert mentor.address_lines[1] == "Nieuwegracht 3"
    channel = LetterChannel(tmp_path)
    for notice in letters.notices:
        await channel.deliver(notice)
    client_letter = (tmp_path / f"{dossier_id}-invitation.txt").read_text("utf-8")
    mentor_letter = (tmp_path / f"{dossier_id}-invitation-vertegenwoordiger.txt").read_text("utf-8")
    assert client_letter.startswith(f"J. Jansen\n{street}\n")
    assert "U bent verhuisd naar de gemeente Amsterdam" in client_letter
    assert mentor_letter.startswith("A. Bakker\nNieuwegracht 3\n")
    assert "J. Jansen is verhuisd naar de gemeente Amsterdam" in mentor_letter


async def test_just_after_midnight_in_the_netherlands_the_move_day_has_come(
    agents: Agents, letters: RecordingChannel
) -> None:
    # 23:30 UTC on 2 March is 00:30 on 3 March in Amsterdam: the client moved today.
    agents.clock.set(START.replace(day=2, hour=23, minute=30))
    await _start(agents, START.date())
    client, _mentor = letters.notices
    assert client.moved is True
    assert client.address_lines[1] == f"{NEW_ADDRESS.street} {NEW_ADDRESS.house_number}"
