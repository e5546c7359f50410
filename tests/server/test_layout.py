"""The server's modules import each other one way only: no import cycles (type-checking
imports included), and nothing imports the composition root but the entry points."""

from __future__ import annotations

import grimp

ENTRY_POINTS = {"liaotian.server.cli", "liaotian.server.testing", "liaotian.server.__main__"}


def graph() -> grimp.ImportGraph:
    return grimp.build_graph("liaotian.server", cache_dir=None)


def cycles(g: grimp.ImportGraph) -> list[tuple[str, ...]]:
    found = []
    for module in sorted(g.modules):
        for imported in sorted(g.find_modules_directly_imported_by(module)):
            if not imported.startswith("liaotian.server"):
                continue
            back = g.find_shortest_chain(importer=imported, imported=module)
            if back:
                found.append((module, *back))
    return found


def test_no_import_cycles_in_the_server() -> None:
    assert cycles(graph()) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    g = graph()
    g.add_import(importer="liaotian.server.chat.model", imported="liaotian.server.chat.ops")
    assert any(c[0] == "liaotian.server.chat.model" for c in cycles(g))


def test_only_the_entry_points_import_the_composition_root() -> None:
    importers = graph().find_modules_that_directly_import("liaotian.server.app")
    assert importers <= ENTRY_POINTS, importers - ENTRY_POINTS
