"""The settings reference in docs/operations.md is generated from the settings classes."""

from __future__ import annotations

from pathlib import Path

from agent.settings import AgentSettings
from agent.settings_doc import BEGIN_MARKER, END_MARKER, main, render_reference, update_document
from registry.settings import RegistrySettings
from tests.conftest import REPOSITORY

OPERATIONS = REPOSITORY / "docs" / "operations.md"


def test_committed_reference_matches_the_settings() -> None:
    text = OPERATIONS.read_text(encoding="utf-8")
    assert update_document(text) == text, "run: python -m agent.settings_doc"


def test_reference_names_every_field_with_its_variable() -> None:
    reference = render_reference()
    for name in RegistrySettings.model_fields:
        # A nested setting (api_contact) is named per field: ..._API_CONTACT__NAME.
        assert f"`MEEVERHUIZEN_REGISTRY_{name.upper()}" in reference
    for name in AgentSettings.model_fields:
        assert f"MEEVERHUIZEN_AGENT_{name.upper()}" in reference
    assert "| `tls_client_auth` | `MEEVERHUIZEN_AGENT_TLS_CLIENT_AUTH` | `none` |" in reference


def test_only_the_marked_block_is_rewritten() -> None:
    text = f"# Title\n\nbefore\n{BEGIN_MARKER}\nOLD BLOCK TEXT\n{END_MARKER}\nafter\n"
    updated = update_document(text)
    assert updated.startswith(f"# Title\n\nbefore\n{BEGIN_MARKER}\n### Agent")
    assert updated.endswith(f"\n{END_MARKER}\nafter\n")
    assert "OLD BLOCK TEXT" not in updated
    assert update_document(updated) == updated


def test_check_reports_a_stale_document_and_rewriting_fixes_it(tmp_path: Path) -> None:
    document = tmp_path / "operations.md"
    document.write_text(f"{BEGIN_MARKER}\nold\n{END_MARKER}\n", encoding="utf-8")
    assert main(["--check", str(document)]) == 1
    assert main([str(document)]) == 0
    assert main(["--check", str(document)]) == 0
