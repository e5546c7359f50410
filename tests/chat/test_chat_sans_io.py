"""The chat core stays sans-I/O: no event loop, sockets, database or store (like
tests/protocol/test_sans_io.py for the protocol)."""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import pkgutil
import subprocess
import sys
import types

import liaotian.server.chat
import pytest

FORBIDDEN_ROOTS = {
    "asyncio",
    "socket",
    "selectors",
    "ssl",
    "sqlite3",
    "aiosqlite",
    "time",
    "datetime",
    "threading",
}  # time passes in (Plan.ts), never read here
FORBIDDEN_SERVER = {
    "store",
    "services",
    "handlers",
    "net",
    "transport",
    "hub",
    "router",
    "app",
    "fanout",
    "backup",
    "testing",
    "cli",
}
EXPECTED = {
    "model",
    "plan",
    "ops",
    "policy",
    "rules",
    "rules.send",
    "rules.groups",
    "rules.contacts",
    "rules.receipts",
    "rules.media",
}


def modules() -> list[str]:
    prefix = "liaotian.server.chat."
    return sorted(
        info.name.removeprefix(prefix)
        for info in pkgutil.walk_packages(liaotian.server.chat.__path__, prefix)
    )


def test_every_expected_module_exists() -> None:
    assert set(modules()) >= EXPECTED


def imports(source: str) -> set[tuple[int, str]]:
    """(relative level, module) of every import in the source."""
    found: set[tuple[int, str]] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {(0, alias.name) for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            found.add((node.level, node.module or ""))
        elif isinstance(node, ast.Call) and getattr(
            node.func, "id", getattr(node.func, "attr", "")
        ) in ("__import__", "import_module"):
            found.add((0, "<dynamic>"))
    return found


def absolute(module: str, level: int, name: str) -> str:
    if not level:
        return name
    parts = module.split(".")[:-1]  # the package (of a module, or of an __init__)
    parts = parts[: len(parts) - (level - 1)]
    return ".".join([*parts, *([name] if name else [])])


@pytest.mark.parametrize("name", ["__init__", *modules()])
def test_module_imports_no_io_and_no_store(name: str) -> None:
    full = "liaotian.server.chat" + ("" if name == "__init__" else f".{name}")
    module = importlib.import_module(full)
    src = inspect.getsource(module)
    where = full + (
        ".__init__" if module.__file__ and module.__file__.endswith("__init__.py") else ""
    )
    for level, imported in imports(src):
        target = absolute(where, level, imported)
        assert target != "<dynamic>", f"{full}: dynamic import"
        assert target.split(".")[0] not in FORBIDDEN_ROOTS, f"{full} imports {target}"
        if target.startswith("liaotian.server."):
            part = target.split(".")[2]
            assert part == "chat", f"{full} imports {target}"
            assert part not in FORBIDDEN_SERVER


@pytest.mark.parametrize("name", modules())
def test_module_namespace_holds_no_io_module(name: str) -> None:
    module = importlib.import_module(f"liaotian.server.chat.{name}")
    for attr, value in vars(module).items():
        if isinstance(value, types.ModuleType):
            assert value.__name__.split(".")[0] not in FORBIDDEN_ROOTS, f"{name}.{attr}"


def test_the_check_resolves_relative_imports() -> None:
    assert absolute("liaotian.server.chat.rules.send", 2, "ops") == "liaotian.server.chat.ops"
    assert (
        absolute("liaotian.server.chat.rules.__init__", 1, "send")
        == "liaotian.server.chat.rules.send"
    )
    assert absolute("liaotian.server.chat.ops", 2, "store") == "liaotian.server.store"


def test_importing_the_core_loads_no_io_module() -> None:
    # A fresh interpreter: this test process has long since imported asyncio (pytest-asyncio).
    code = (
        "import liaotian.server.chat.rules, sys, json; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('asyncio', 'socket', 'selectors', 'ssl', 'sqlite3', 'aiosqlite') or "
        "m.startswith('liaotian.server.') and not m.startswith('liaotian.server.chat'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(result.stdout) == []
