"""The chat core: the rules of every write, as plain code over a planning interface.

    model.py   users' relations and groups as plain data
    plan.py    the planning interface a store implements (reads, named writes)
    ops.py     write operations and their outcomes
    policy.py  the bounds the rules enforce and the write budget they charge
    rules/     one module per feature: send, groups, contacts, receipts

It imports no asyncio, sqlite3, aiosqlite or socket and no store (tests/chat/
test_sans_io.py, and .importlinter): the rules run the same on SQLite, in memory and
in unit tests.
"""
