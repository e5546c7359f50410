"""The media package's shape: exports match __all__, and the rules load without I/O."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

MODULES = ["", ".errors", ".ranges", ".limits", ".uploads", ".blobs", ".probe", ".aio"]


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist_and_public_definitions_are_exported(name: str) -> None:
    mod = importlib.import_module("liaotian.server.media" + name)
    exported = set(mod.__all__)
    assert all(hasattr(mod, n) for n in exported)
    if name:  # a module's own public classes and functions are all in __all__
        own = {
            n
            for n, v in vars(mod).items()
            if not n.startswith("_")
            and getattr(v, "__module__", None) == mod.__name__
            and callable(v)
        }
        assert own <= exported, own - exported


def test_the_rules_import_no_io_or_decoders() -> None:
    code = (
        "import sys, liaotian.server.media.uploads; "
        "print(sorted(m for m in ('asyncio', 'PIL', 'mutagen', 'sqlite3', "
        "'liaotian.server.media.blobs') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
