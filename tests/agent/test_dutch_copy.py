"""Texts for clients and case workers are Dutch: no English word in a template or a task text.

The check reads the source: every template of the client's pages, the text of every
``open_task`` call (its literal, the variable it was built in, or the helper that builds it), the
letters and messages to the client and the status lines of the page. Words that are the same in
both languages (``in``, ``is``, ``start``, ``contact``, ``order``) are not in the list.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

_AGENT = Path(__file__).resolve().parents[2] / "agent"
# English words that are not Dutch words (or not used as Dutch in these texts).
_ENGLISH_WORDS = """
    the and with by for from this that these those please device devices client clients
    supplier suppliers task tasks handover no not yet your you will must has have been without
    usable address date emigrated provision provisions arrange how back comes reports moved
    received event events failed error should cannot could would there their they then than
    after before because only also all any each every new old day days working until under into
    out up down make made see call phone takeover decision
"""
_ENGLISH = frozenset(_ENGLISH_WORDS.split())
_WORD = re.compile(r"[A-Za-zÀ-ÿ']+")
# The functions and tables whose strings reach clients (beyond task texts and templates).
_CLIENT_TEXTS = {
    "web/pages.py": {"_STATE_TEXTS", "_status_lines", "_device_text"},
    "consent/progress.py": {
        "_PROBLEMS",
        "_KEEP_USING",
        "device_sentence",
        "_call",
        "progress_events",
    },
    "supplier/progress.py": {"_REASONS", "progress_note"},
    "consent/channels.py": {"_OPENINGS", "_SUBJECTS", "notice_text", "_wlz_text", "_moving"},
    "consent/dossier_pdf.py": {"_KINDS", "dossier_pdf_lines"},
    "core/policy.py": {"_NOT_MOVABLE", "_CLIENT_OWNED"},
}


def _strings(node: ast.AST) -> Iterator[str]:
    # Docstrings are for developers (English); everything else in the node is copy.
    docstrings = {
        id(child.body[0].value)
        for child in ast.walk(node)
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
        and child.body
        and isinstance(child.body[0], ast.Expr)
    }
    for child in ast.walk(node):
        if (
            isinstance(child, ast.Constant)
            and isinstance(child.value, str)
            and id(child) not in docstrings
        ):
            yield child.value


def _defined(tree: ast.Module, name: str) -> ast.AST | None:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
            return node
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                return node
    return None


def _task_texts(path: Path) -> Iterator[tuple[str, str]]:
    tree = ast.parse(path.read_text("utf-8"))
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    for function in functions:
        for call in ast.walk(function):
            if not (
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Name)
                and call.func.id == "open_task"
                and len(call.args) >= 3
            ):
                continue
            text = call.args[2]
            where = f"{path.relative_to(_AGENT.parent)}:{call.lineno}"
            if isinstance(text, ast.Name):
                # Built in a variable of the same function.
                for node in ast.walk(function):
                    if isinstance(node, ast.Assign) and any(
                        isinstance(t, ast.Name) and t.id == text.id for t in node.targets
                    ):
                        yield from ((where, s) for s in _strings(node.value))
            elif isinstance(text, ast.Call) and isinstance(text.func, ast.Name):
                helper = _defined(tree, text.func.id)
                assert helper is not None, f"{where}: helper {text.func.id} not found"
                yield from ((where, s) for s in _strings(helper))
            else:
                yield from ((where, s) for s in _strings(text))


def _all_texts() -> Iterator[tuple[str, str]]:
    for path in sorted(_AGENT.rglob("*.py")):
        yield from _task_texts(path)
    for relative, names in _CLIENT_TEXTS.items():
        tree = ast.parse((_AGENT / relative).read_text("utf-8"))
        for name in sorted(names):
            node = _defined(tree, name)
            assert node is not None, f"{relative}: {name} not found"
            yield from ((f"agent/{relative}:{name}", s) for s in _strings(node))
    for template in sorted((_AGENT / "web" / "templates").glob("*.html")):
        text = template.read_text("utf-8")
        # Markup, Jinja expressions and statements are not copy.
        text = re.sub(r"{[{%#].*?[}%#]}", " ", text, flags=re.S)
        text = re.sub(r"<[^>]+>", " ", text)
        yield f"agent/web/templates/{template.name}", text


def _english_words(text: str) -> list[str]:
    # Machine words (states, kinds: "receiver-not-connected") and placeholders are not copy.
    if re.fullmatch(r"[a-z0-9-]+", text):
        return []
    text = re.sub(r"{[^}]*}", " ", text)
    return [word for word in _WORD.findall(text) if word.lower() in _ENGLISH]


def test_every_client_and_task_text_is_found() -> None:
    texts = list(_all_texts())
    assert any("templates/status.html" in where for where, _ in texts)
    assert sum(1 for where, _ in texts if where.endswith(tuple("0123456789"))) >= 20


@pytest.mark.parametrize(
    ("where", "text"),
    [pytest.param(w, t, id=f"{w}#{i}") for i, (w, t) in enumerate(_all_texts())],
)
def test_no_english_word(where: str, text: str) -> None:
    assert _english_words(text) == [], f"{where}: {text!r}"


def test_the_word_list_finds_english() -> None:
    assert _english_words("Start the handover by hand (POST /v1/dossiers).") == [
        "the",
        "handover",
        "by",
    ]
    assert _english_words("De cliënt is verhuisd naar de gemeente {receiving}.") == []
