"""The database schema as an ordered list of migrations.

`PRAGMA user_version` records how many have been applied; start-up applies the rest in one
transaction each, so a database written by an older release opens and upgrades in place.
Append new migrations; never edit a published one.
"""

from __future__ import annotations

MIGRATIONS: list[str] = [
    # 1: accounts, devices, direct conversations, the message archive and per-user update logs.
    """
    CREATE TABLE users (
        id            INTEGER PRIMARY KEY,
        username      TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        created       INTEGER NOT NULL,
        log_floor     INTEGER NOT NULL DEFAULT 0  -- newest seq pruned from the update log
    );
    CREATE TABLE devices (
        user_id    INTEGER NOT NULL REFERENCES users(id),
        device     TEXT NOT NULL,
        token_hash BLOB UNIQUE,                   -- sha256 of the session token; NULL = none
        created    INTEGER NOT NULL,
        last_seen  INTEGER NOT NULL,
        acked      INTEGER NOT NULL DEFAULT 0,    -- the device's acknowledged position
        PRIMARY KEY (user_id, device)
    ) WITHOUT ROWID;
    CREATE TABLE conversations (
        id      INTEGER PRIMARY KEY,
        kind    INTEGER NOT NULL,                 -- 1 = direct
        user_a  INTEGER NOT NULL,                 -- direct: the smaller user id
        user_b  INTEGER NOT NULL,
        created INTEGER NOT NULL,
        UNIQUE (user_a, user_b)
    );
    CREATE TABLE messages (
        id         INTEGER PRIMARY KEY,
        conv_id    INTEGER NOT NULL,
        pos        INTEGER NOT NULL,
        sender_id  INTEGER NOT NULL,
        sender_seq INTEGER NOT NULL,              -- the entry in the sender's own update log
        cmid       TEXT NOT NULL,
        ts         INTEGER NOT NULL,
        body       BLOB NOT NULL,                 -- the wire message map, encoded once
        UNIQUE (conv_id, pos),
        UNIQUE (sender_id, cmid)
    );
    CREATE TABLE updates (
        user_id    INTEGER NOT NULL,
        seq        INTEGER NOT NULL,
        kind       INTEGER NOT NULL,
        message_id INTEGER,                       -- kind 1: the message
        data       BLOB,                          -- other kinds: the encoded data map
        ts         INTEGER NOT NULL,
        PRIMARY KEY (user_id, seq)
    ) WITHOUT ROWID;
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)
