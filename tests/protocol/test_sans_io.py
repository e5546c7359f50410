"""The protocol package stays sans-I/O: no event loop, no sockets, no clock."""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import pkgutil
import subprocess
import sys
import types

import liaotian.protocol
import pytest

FORBIDDEN = {
    "asyncio",
    "socket",
    "time",
    "selectors",
    "ssl",
    "datetime",
}  # datetime: reading a clock is the caller's job too
EXPECTED_MODULES = {
    "codes",
    "errors",
    "limits",
    "frames",
    "base",
    "messages",
    "social",
    "state",
    "connection",
}
MODULES = sorted(m.name for m in pkgutil.iter_modules(liaotian.protocol.__path__))


def test_every_expected_module_exists() -> None:
    assert set(MODULES) >= EXPECTED_MODULES


def imported_roots(source: str) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name | ast.Attribute)
            and getattr(node.func, "id", getattr(node.func, "attr", ""))
            in ("__import__", "import_module")
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            roots.add(str(node.args[0].value).split(".")[0])
    return roots


@pytest.mark.parametrize("name", ["__init__", *MODULES])
def test_module_source_imports_nothing_forbidden(name: str) -> None:
    module = (
        liaotian.protocol
        if name == "__init__"
        else importlib.import_module(f"liaotian.protocol.{name}")
    )
    roots = imported_roots(inspect.getsource(module))
    assert not roots & FORBIDDEN, f"{module.__name__} imports {sorted(roots & FORBIDDEN)}"


@pytest.mark.parametrize("name", MODULES)
def test_module_namespace_holds_no_forbidden_module(name: str) -> None:
    module = importlib.import_module(f"liaotian.protocol.{name}")
    for attr, value in vars(module).items():
        if isinstance(value, types.ModuleType):
            assert value.__name__.split(".")[0] not in FORBIDDEN, f"{name}.{attr}"


def test_ast_check_catches_forbidden_imports() -> None:
    src = "import asyncio\nfrom socket import socket\nimport time as t\n__import__('ssl')\n"
    assert imported_roots(src) == {"asyncio", "socket", "time", "ssl"}
    assert imported_roots("from . import frames\nfrom .codes import X\n") == set()


def test_importing_the_package_loads_no_io_module() -> None:
    # A fresh interpreter: this test process has long since imported asyncio (pytest-asyncio).
    # (time and datetime are left out here: msgpack itself imports them.)
    code = (
        "import liaotian.protocol, sys, json; "
        "print('asyncio' in sys.modules); "
        "print(json.dumps(sorted(m for m in ('asyncio', 'socket', 'selectors', 'ssl') "
        "if m in sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    first, second = result.stdout.splitlines()
    assert first == "False"
    assert json.loads(second) == []


# --------------------------------------------------------------------------- public API


def test_all_matches_the_public_names() -> None:
    pkg = liaotian.protocol
    public = {
        name
        for name, value in vars(pkg).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert len(pkg.__all__) == len(set(pkg.__all__)), "duplicates in __all__"
    assert set(pkg.__all__) == public
    for name in pkg.__all__:
        assert hasattr(pkg, name)


def test_star_import_gives_exactly_all() -> None:
    ns: dict[str, object] = {}
    exec("from liaotian.protocol import *", ns)
    ns.pop("__builtins__")
    assert set(ns) == set(liaotian.protocol.__all__)


def test_every_core_message_class_is_exported() -> None:
    from liaotian.protocol.messages import CORE_CLASSES

    for cls in CORE_CLASSES:
        assert getattr(liaotian.protocol, cls.__name__) is cls


def test_every_social_message_class_is_importable_from_its_module() -> None:
    from liaotian.protocol import MESSAGE_CLASSES, social

    for cls in social.SOCIAL_CLASSES:
        assert getattr(social, cls.__name__) is cls
        assert MESSAGE_CLASSES[int(cls.TYPE)] is cls


def test_every_message_class_and_code_enum_is_exported() -> None:
    from liaotian.protocol import MESSAGE_CLASSES, bots, channels, nearby, shop, social, wallet

    # feature families: imported from their own module
    families = (channels, wallet, bots, nearby, shop)
    for cls in MESSAGE_CLASSES.values():
        home = next((m for m in families if m.__name__ == cls.__module__), liaotian.protocol)
        assert getattr(home, cls.__name__) is cls
    for entry in (
        social.GroupMember,
        social.GroupSummary,
        social.Marker,
        social.ConversationSummary,
        social.PresenceEntry,
    ):
        assert getattr(liaotian.protocol, entry.__name__) is entry
