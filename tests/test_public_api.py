"""Each package's public surface is explicit: ``__all__`` everywhere, nothing public left out.

The order of ``__all__`` is ruff's job (RUF022).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys
from types import ModuleType

import pytest

PACKAGES = ["protocol", "registry", "agent"]


def _public_modules() -> list[str]:
    names = []
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        names.append(package_name)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}."):
            if not any(part.startswith("_") for part in info.name.split(".")):
                names.append(info.name)
    return names


def _defined_here(module: ModuleType, name: str) -> bool:
    value = getattr(module, name)
    return getattr(value, "__module__", None) == module.__name__ and (
        inspect.isclass(value) or inspect.isfunction(value)
    )


@pytest.mark.parametrize("module_name", _public_modules())
def test_all_is_explicit(module_name: str) -> None:
    module = importlib.import_module(module_name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{module_name} has no __all__"
    for name in exported:
        assert hasattr(module, name), f"{module_name}.__all__ names missing {name}"
    leaked = [
        name
        for name in vars(module)
        if not name.startswith("_") and name not in exported and _defined_here(module, name)
    ]
    assert not leaked, f"{module_name} defines public names outside __all__: {leaked}"


def test_protocol_is_a_pure_library() -> None:
    """protocol/ must not pull in a web framework, a database or the other packages."""
    code = (
        "import sys, protocol, protocol.jws, protocol.messages\n"
        "bad = {'fastapi', 'starlette', 'sqlalchemy', 'agent', 'registry', 'httpx'}\n"
        "print(sorted(bad & {m.split('.')[0] for m in sys.modules}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
