"""The database schema as an ordered list of migrations, and the writer's connection.

`PRAGMA user_version` records how many have been applied; start-up applies the rest in one
transaction each, so a database written by an older release opens and upgrades in place.
Append new migrations; never edit a published one.
"""

from __future__ import annotations

import logging
import sqlite3

log = logging.getLogger("liaotian.store")

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
    # 2: groups, read markers, contacts, blocks, profiles and privacy. Conversations are rebuilt
    # so a group (kind 2) has no user pair; the pair stays unique among direct ones.
    """
    CREATE TABLE conversations_v2 (
        id      INTEGER PRIMARY KEY,
        kind    INTEGER NOT NULL,                 -- 1 = direct, 2 = group
        user_a  INTEGER,                          -- direct: the smaller user id
        user_b  INTEGER,
        created INTEGER NOT NULL
    );
    INSERT INTO conversations_v2 (id, kind, user_a, user_b, created)
        SELECT id, kind, user_a, user_b, created FROM conversations;
    DROP TABLE conversations;
    ALTER TABLE conversations_v2 RENAME TO conversations;
    CREATE UNIQUE INDEX conversations_direct ON conversations (user_a, user_b) WHERE kind = 1;
    CREATE INDEX conversations_by_b ON conversations (user_b) WHERE kind = 1;
    CREATE TABLE groups (
        conv_id  INTEGER PRIMARY KEY,             -- a group is its conversation
        name     TEXT NOT NULL,
        topic    TEXT NOT NULL DEFAULT '',
        owner_id INTEGER NOT NULL
    );
    CREATE TABLE members (
        conv_id    INTEGER NOT NULL,
        user_id    INTEGER NOT NULL,
        role       INTEGER NOT NULL,              -- 0 member, 1 admin, 2 owner
        joined_pos INTEGER NOT NULL,              -- first timeline position the member sees
        joined     INTEGER NOT NULL,              -- ms since epoch
        PRIMARY KEY (conv_id, user_id)
    ) WITHOUT ROWID;
    CREATE INDEX members_by_user ON members (user_id);
    CREATE TABLE read_markers (
        user_id INTEGER NOT NULL,
        conv_id INTEGER NOT NULL,
        pos     INTEGER NOT NULL,
        PRIMARY KEY (user_id, conv_id)
    ) WITHOUT ROWID;
    CREATE TABLE relations (
        user_id  INTEGER NOT NULL,
        other_id INTEGER NOT NULL,
        kind     INTEGER NOT NULL,                -- 1 contact, 2 request sent, 3 blocked
        created  INTEGER NOT NULL,
        PRIMARY KEY (user_id, other_id, kind)
    ) WITHOUT ROWID;
    CREATE INDEX relations_by_other ON relations (other_id, kind);
    ALTER TABLE users ADD COLUMN display_name TEXT NOT NULL DEFAULT '';
    ALTER TABLE users ADD COLUMN status TEXT NOT NULL DEFAULT '';
    -- privacy: 0 everyone, 1 contacts, 2 nobody (messages: 0 everyone, 1 contacts)
    ALTER TABLE users ADD COLUMN privacy_presence INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE users ADD COLUMN privacy_profile INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE users ADD COLUMN privacy_messages INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE users ADD COLUMN last_seen INTEGER NOT NULL DEFAULT 0;
    """,
    # 3: the idempotency index is ordered by cmid first. Ordered by sender first, every
    # message changed a page of its sender's part of the index, one more scattered page
    # per message for each commit to write and each checkpoint to copy; cmids that grow
    # over time (a counter, or a timestamp first as the reference client makes them)
    # now land on the same few pages, and random ones cost what they did. Measured: 51
    # -> 40 WAL pages per 10-message commit at 400,000 messages (bench-shaped load).
    """
    CREATE TABLE messages_v3 (
        id         INTEGER PRIMARY KEY,
        conv_id    INTEGER NOT NULL,
        pos        INTEGER NOT NULL,
        sender_id  INTEGER NOT NULL,
        sender_seq INTEGER NOT NULL,
        cmid       TEXT NOT NULL,
        ts         INTEGER NOT NULL,
        body       BLOB NOT NULL,
        UNIQUE (conv_id, pos),
        UNIQUE (cmid, sender_id)
    );
    INSERT INTO messages_v3 (id, conv_id, pos, sender_id, sender_seq, cmid, ts, body)
        SELECT id, conv_id, pos, sender_id, sender_seq, cmid, ts, body FROM messages;
    DROP TABLE messages;
    ALTER TABLE messages_v3 RENAME TO messages;
    """,
    # 4: the update logs' recent rows are appended here first and folded into `updates`
    # later, many per user at once (see store/tail.py): written in place, each message
    # changed a scattered page of each of its readers' logs in every commit.
    """
    CREATE TABLE update_journal (
        id   INTEGER PRIMARY KEY,                 -- one row per commit, in commit order
        ts   INTEGER NOT NULL,                    -- the commit's timestamp (ms)
        rows BLOB NOT NULL                        -- msgpack: [[id, user, seq, kind, message
    );                                            --   id, data, ts], ...] (`updates` rows)
    """,
    # 5: privacy `groups`, who may add the user to a group: 0 everyone, 1 contacts (the
    # default, also for existing users), 2 nobody.
    """
    ALTER TABLE users ADD COLUMN privacy_groups INTEGER NOT NULL DEFAULT 1;
    """,
    # 6: a group's read markers (GET_RECEIPTS) by conversation: keyed by user first, that
    # read scanned every marker of every user.
    """
    CREATE INDEX read_markers_by_conv ON read_markers (conv_id);
    """,
    # 7: privacy `receipts`, who sees the user's read and delivered positions:
    # 0 everyone, 1 contacts (the default, also for existing users), 2 nobody.
    """
    ALTER TABLE users ADD COLUMN privacy_receipts INTEGER NOT NULL DEFAULT 1;
    """,
    # 8: an operator may disable an account (`liaotian-server admin disable`, store/admin.py):
    # its LOGIN is refused and its session tokens are cleared; 0 = enabled.
    """
    ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
    """,
    # 9: the wallet (chat/ledger.py). Transfers are only ever inserted; an account's row
    # holds its balance, checked never to go negative (a batch that would is rolled back
    # whole, though the rules refuse such a transfer before); an open pending transfer has
    # a row in wallet_pending until it is posted, voided or expires. Privacy `coins`, who
    # may send the user coins: 0 everyone, 1 contacts (the default), 2 nobody.
    """
    CREATE TABLE wallet_accounts (
        id          INTEGER PRIMARY KEY,          -- a user's id, or -1 issuance, -2 rewards,
        balance     INTEGER NOT NULL,             --   -3 escrow
        pending_out INTEGER NOT NULL,
        pending_in  INTEGER NOT NULL,
        CHECK (pending_out >= 0 AND pending_in >= 0),
        CHECK (id IN (-1, -2) OR (id = -3 AND balance + pending_in >= 0)
               OR (id > 0 AND balance - pending_out >= 0))
    );
    CREATE TABLE wallet_transfers (
        id         INTEGER PRIMARY KEY,
        debit      INTEGER NOT NULL,
        credit     INTEGER NOT NULL,
        amount     INTEGER NOT NULL CHECK (amount >= 0),
        code       INTEGER NOT NULL,
        flags      INTEGER NOT NULL,              -- 1 pending, 2 post, 4 void
        pending_id INTEGER NOT NULL,              -- post and void: the pending transfer
        expires    INTEGER NOT NULL,
        ref        INTEGER NOT NULL,
        memo       TEXT NOT NULL,
        actor      INTEGER NOT NULL,
        ts         INTEGER NOT NULL,
        key        TEXT NOT NULL,                 -- the actor's idempotency key, or ''
        CHECK (debit != credit)
    );
    CREATE INDEX wallet_transfers_debit ON wallet_transfers (debit, id);
    CREATE INDEX wallet_transfers_credit ON wallet_transfers (credit, id);
    CREATE UNIQUE INDEX wallet_transfers_closing ON wallet_transfers (pending_id)
        WHERE pending_id > 0;
    CREATE UNIQUE INDEX wallet_transfers_key ON wallet_transfers (actor, key) WHERE key != '';
    CREATE TABLE wallet_pending (
        id      INTEGER PRIMARY KEY,              -- an open pending transfer
        expires INTEGER NOT NULL                  -- 0: never
    );
    CREATE INDEX wallet_pending_expires ON wallet_pending (expires) WHERE expires > 0;
    CREATE TABLE wallet_keys (
        user_id INTEGER NOT NULL,
        key     TEXT NOT NULL,
        params  BLOB NOT NULL,                    -- the request, packed
        result  BLOB NOT NULL,                    -- its answer, packed
        ts      INTEGER NOT NULL,
        PRIMARY KEY (user_id, key)
    ) WITHOUT ROWID;
    CREATE TABLE wallet_packets (
        id      INTEGER PRIMARY KEY,
        sender  INTEGER NOT NULL,
        conv    INTEGER NOT NULL,
        peer    INTEGER NOT NULL,                 -- direct: the other participant; group: 0
        amount  INTEGER NOT NULL,
        count   INTEGER NOT NULL,
        split   INTEGER NOT NULL,                 -- 0 equal, 1 random
        seed    INTEGER NOT NULL,
        pending INTEGER NOT NULL,                 -- its reservation (a pending transfer)
        expires INTEGER NOT NULL,
        memo    TEXT NOT NULL,
        created INTEGER NOT NULL,
        state   INTEGER NOT NULL                  -- 0 open, 1 emptied, 2 expired
    );
    CREATE TABLE wallet_claims (
        packet   INTEGER NOT NULL,
        user_id  INTEGER NOT NULL,
        n        INTEGER NOT NULL,                -- 1, 2, ...: the claim order
        amount   INTEGER NOT NULL,
        transfer INTEGER NOT NULL,
        PRIMARY KEY (packet, user_id),
        UNIQUE (packet, n)
    ) WITHOUT ROWID;
    CREATE TABLE wallet_tasks (
        user_id INTEGER NOT NULL,
        task    TEXT NOT NULL,
        period  INTEGER NOT NULL,
        count   INTEGER NOT NULL,
        PRIMARY KEY (user_id, task, period)
    ) WITHOUT ROWID;
    CREATE TABLE wallet_items (
        id       INTEGER PRIMARY KEY,
        code     TEXT NOT NULL UNIQUE,
        kind     TEXT NOT NULL,
        owner    INTEGER NOT NULL,
        created  INTEGER NOT NULL,
        source   TEXT NOT NULL,
        redeemed INTEGER NOT NULL                 -- ms, 0 while it can be redeemed
    );
    CREATE INDEX wallet_items_owner ON wallet_items (owner);
    ALTER TABLE users ADD COLUMN privacy_coins INTEGER NOT NULL DEFAULT 1;
    """,
    # 10: channels (chat/rules/channels.py): one log of posts per channel that its members
    # read. A member is one row by (channel, user); nothing is written per member when
    # someone posts. Posts and comments share one id space, the rowids of the FTS5 index
    # (`chan` is "c<channel>", so a search stays inside its channel).
    """
    CREATE TABLE channels (
        conv_id      INTEGER PRIMARY KEY,         -- a channel is its conversation (kind 3)
        name         TEXT NOT NULL,
        about        TEXT NOT NULL DEFAULT '',
        rules        TEXT NOT NULL DEFAULT '',    -- shown to whoever joins
        owner_id     INTEGER NOT NULL,
        created      INTEGER NOT NULL,
        open         INTEGER NOT NULL,            -- 1: anyone joins; 0: with the invitation
        members_post INTEGER NOT NULL,            -- 1: members post too (admins always do)
        slow_mode    INTEGER NOT NULL DEFAULT 0,  -- seconds between a member's posts
        invite       TEXT NOT NULL DEFAULT '',    -- the invitation token ('' : none)
        members      INTEGER NOT NULL,            -- member count
        last_pos     INTEGER NOT NULL DEFAULT 0,  -- position of the newest post
        last_ts      INTEGER NOT NULL DEFAULT 0,  -- ms of the newest post
        pins         TEXT NOT NULL DEFAULT ''     -- pinned positions, comma-separated
    );
    CREATE TABLE channel_members (
        conv_id   INTEGER NOT NULL,
        user_id   INTEGER NOT NULL,
        role      INTEGER NOT NULL,               -- 0 member, 1 admin, 2 owner
        read_pos  INTEGER NOT NULL,               -- read up to this position
        joined    INTEGER NOT NULL,
        last_post INTEGER NOT NULL DEFAULT 0,     -- ms of the newest post or comment (slow mode)
        PRIMARY KEY (conv_id, user_id)
    ) WITHOUT ROWID;
    CREATE INDEX channel_members_by_user ON channel_members (user_id);
    CREATE TABLE channel_bans (
        conv_id INTEGER NOT NULL,
        user_id INTEGER NOT NULL,
        by_id   INTEGER NOT NULL,
        ts      INTEGER NOT NULL,
        PRIMARY KEY (conv_id, user_id)
    ) WITHOUT ROWID;
    CREATE TABLE channel_posts (
        id        INTEGER PRIMARY KEY,
        conv_id   INTEGER NOT NULL,
        pos       INTEGER NOT NULL,
        author_id INTEGER NOT NULL,
        cmid      TEXT NOT NULL,
        ts        INTEGER NOT NULL,
        text      TEXT NOT NULL,                  -- '' once deleted
        deleted   INTEGER NOT NULL DEFAULT 0,
        likes     INTEGER NOT NULL DEFAULT 0,
        comments  INTEGER NOT NULL DEFAULT 0,     -- comments made under it
        UNIQUE (conv_id, pos)
    );
    CREATE UNIQUE INDEX channel_posts_by_cmid ON channel_posts (conv_id, author_id, cmid);
    CREATE TABLE channel_comments (
        id        INTEGER PRIMARY KEY,
        conv_id   INTEGER NOT NULL,
        pos       INTEGER NOT NULL,               -- the post's position
        n         INTEGER NOT NULL,               -- its number under the post, from 1
        author_id INTEGER NOT NULL,
        ts        INTEGER NOT NULL,
        text      TEXT NOT NULL,
        deleted   INTEGER NOT NULL DEFAULT 0,
        UNIQUE (conv_id, pos, n)
    );
    CREATE TABLE channel_likes (
        conv_id INTEGER NOT NULL,
        pos     INTEGER NOT NULL,
        user_id INTEGER NOT NULL,
        ts      INTEGER NOT NULL,
        PRIMARY KEY (conv_id, pos, user_id)
    ) WITHOUT ROWID;
    CREATE VIRTUAL TABLE channel_search USING fts5(chan, text);
    """,
    # 11: media (SPEC.md 27; server/media/ keeps the bytes under the media directory).
    # A blob is its SHA-256; `info` is msgpack of what the server read from it (probe.py).
    # `unref_since` is NULL while a message references the blob, else when it became
    # unreferenced: collected a grace period later.
    """
    CREATE TABLE blobs (
        sha256      BLOB PRIMARY KEY,
        size        INTEGER NOT NULL,
        type        TEXT NOT NULL,                -- detected (images, audio) or declared
        info        BLOB NOT NULL,
        created     INTEGER NOT NULL,
        unref_since INTEGER
    ) WITHOUT ROWID;
    CREATE INDEX blobs_unreferenced ON blobs (unref_since) WHERE unref_since IS NOT NULL;
    CREATE TABLE blob_owners (                    -- who completed an upload of what
        user_id INTEGER NOT NULL,
        sha256  BLOB NOT NULL,
        created INTEGER NOT NULL,
        PRIMARY KEY (user_id, sha256)
    ) WITHOUT ROWID;
    CREATE INDEX blob_owners_by_blob ON blob_owners (sha256);
    CREATE TABLE blob_refs (                      -- messages that reference a blob
        sha256  BLOB NOT NULL,
        conv_id INTEGER NOT NULL,
        pos     INTEGER NOT NULL,
        PRIMARY KEY (sha256, conv_id, pos)
    ) WITHOUT ROWID;
    CREATE TABLE uploads (                        -- unfinished uploads
        id         INTEGER PRIMARY KEY AUTOINCREMENT,  -- the id on the wire: never reused
        user_id    INTEGER NOT NULL,
        sha256     BLOB NOT NULL,
        size       INTEGER NOT NULL,
        type       TEXT NOT NULL,
        name       TEXT NOT NULL,
        chunk_size INTEGER NOT NULL,
        created    INTEGER NOT NULL,
        touched    INTEGER NOT NULL,
        UNIQUE (user_id, sha256, size)
    );
    CREATE INDEX uploads_by_touched ON uploads (touched);
    """,
    # 12: the chat list's index. Per user and conversation: when it was last active (its
    # last message, else when the user joined) and the user's newest log entry for one of
    # its messages. The commits that fold log rows into `updates` keep it (tail.py, sql.py),
    # once per (user, conversation) per fold however many messages that holds, so a page
    # of the chat list (chat_list.py) reads a page of this index instead of ordering all
    # of a user's conversations, and a delivered position is found without walking back
    # through the user's log.
    """
    CREATE TABLE chats (
        user_id INTEGER NOT NULL,
        conv_id INTEGER NOT NULL,
        ts      INTEGER NOT NULL,                 -- ms: its last message, or the user's joining
        seq     INTEGER NOT NULL,                 -- the user's newest log entry for it (0: none)
        pos     INTEGER NOT NULL,                 -- that entry's message position
        PRIMARY KEY (user_id, conv_id)
    ) WITHOUT ROWID;
    CREATE INDEX chats_by_recency ON chats (user_id, ts, conv_id);
    INSERT OR IGNORE INTO chats (user_id, conv_id, ts, seq, pos)
        SELECT user_a, id, coalesce((SELECT ts FROM messages WHERE conv_id = c.id
                                     ORDER BY pos DESC LIMIT 1), created), 0, 0
        FROM conversations c WHERE kind = 1;
    INSERT OR IGNORE INTO chats (user_id, conv_id, ts, seq, pos)
        SELECT user_b, id, coalesce((SELECT ts FROM messages WHERE conv_id = c.id
                                     ORDER BY pos DESC LIMIT 1), created), 0, 0
        FROM conversations c WHERE kind = 1;
    INSERT OR IGNORE INTO chats (user_id, conv_id, ts, seq, pos)
        SELECT user_id, conv_id, coalesce((SELECT ts FROM messages WHERE conv_id = m.conv_id
                                           ORDER BY pos DESC LIMIT 1), joined), 0, 0
        FROM members m;
    """,
    # 13: people and merchants nearby, the shop (SPEC.md 29, 30). A share keeps an H3
    # cell (resolution 9), never a position, filed under its resolution-7 parent `idx`: a
    # query reads the covering index by `idx` (chat/rules/nearby.py). Privacy `nearby`:
    # 0 everyone (the default: sharing is opt-in already), 1 contacts, 2 nobody. Account
    # kind: 0 a person, 1 a merchant (set by an admin).
    """
    ALTER TABLE users ADD COLUMN privacy_nearby INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE users ADD COLUMN kind INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE nearby_shares (
        user_id INTEGER PRIMARY KEY,
        cell    INTEGER NOT NULL,                 -- H3 resolution 9
        idx     INTEGER NOT NULL,                 -- its resolution-7 parent
        expires INTEGER NOT NULL,                 -- ms
        moved   INTEGER NOT NULL                  -- ms: when the cell was last set
    );
    CREATE INDEX nearby_shares_by_idx ON nearby_shares (idx, expires, user_id, cell);
    CREATE INDEX nearby_shares_by_expiry ON nearby_shares (expires);
    CREATE TABLE merchants (
        user_id  INTEGER PRIMARY KEY,
        name     TEXT NOT NULL,
        category TEXT NOT NULL,
        hours    TEXT NOT NULL,
        lat      INTEGER NOT NULL,                -- microdegrees: public for merchants
        lon      INTEGER NOT NULL,
        cell     INTEGER NOT NULL,
        idx      INTEGER NOT NULL
    );
    CREATE INDEX merchants_by_idx ON merchants (idx, category);
    -- the shop: a catalogue of products, orders paid by pending transfers (code 9, ref
    -- the order); the writer holds every product and open order in memory (shop.py)
    CREATE TABLE shop_products (
        id          INTEGER PRIMARY KEY,
        merchant    INTEGER NOT NULL,
        title       TEXT NOT NULL,
        description TEXT NOT NULL,
        price       INTEGER NOT NULL,
        stock       INTEGER NOT NULL CHECK (stock >= 0),
        image       BLOB NOT NULL,                -- a blob's SHA-256, or empty
        requires    TEXT NOT NULL,                -- an item kind a buyer gives up, or ''
        created     INTEGER NOT NULL
    );
    CREATE INDEX shop_products_by_merchant ON shop_products (merchant, id);
    CREATE TABLE shop_orders (
        id       INTEGER PRIMARY KEY,
        product  INTEGER NOT NULL,
        buyer    INTEGER NOT NULL,
        merchant INTEGER NOT NULL,
        qty      INTEGER NOT NULL,
        amount   INTEGER NOT NULL,
        pending  INTEGER NOT NULL,                -- the pending transfer paying it
        state    INTEGER NOT NULL,                -- 0 placed 1 accepted 2 fulfilled 3 declined
        created  INTEGER NOT NULL,                -- 4 cancelled 5 expired
        updated  INTEGER NOT NULL,
        conv     INTEGER NOT NULL,
        item     TEXT NOT NULL
    );
    CREATE INDEX shop_orders_by_buyer ON shop_orders (buyer, id);
    CREATE INDEX shop_orders_by_merchant ON shop_orders (merchant, id);
    CREATE INDEX shop_orders_open ON shop_orders (state) WHERE state < 2;
    """,
    # 14: bots (SPEC.md 26). A bot is a user (password hash "!bot": no password verifies)
    # whose device "bot" holds the bot token; `commands` is JSON [[name, description]].
    # bot_groups: groups whose bots see every message; bot_edits: a bot message's latest
    # edit (its text and msgpack meta), for the buttons a press may name.
    """
    CREATE TABLE bots (
        user_id  INTEGER PRIMARY KEY,
        owner    INTEGER NOT NULL,
        created  INTEGER NOT NULL,
        commands TEXT NOT NULL DEFAULT '[]'
    );
    CREATE INDEX bots_by_owner ON bots (owner, user_id);
    CREATE TABLE bot_groups (conv_id INTEGER PRIMARY KEY);
    CREATE TABLE bot_edits (
        conv_id INTEGER NOT NULL,
        pos     INTEGER NOT NULL,
        text    TEXT NOT NULL,
        meta    BLOB NOT NULL,
        PRIMARY KEY (conv_id, pos)
    ) WITHOUT ROWID;
    """,
    # 15: held for a branch that in the end needed no table; empty, so that the numbers
    # after it (in SPEC and docs) stay what they are.
    "",
    # 16: a user's media byte buckets (SPEC.md 27.4) as last charged, bytes left and
    # when, so a restart goes on from them rather than handing out a fresh day's bytes.
    # Written a second after a charge at most (server/handlers/media.py), not per chunk.
    """
    CREATE TABLE media_budgets (
        user_id    INTEGER PRIMARY KEY,
        up_level   INTEGER NOT NULL,
        up_at      INTEGER NOT NULL,
        down_level INTEGER NOT NULL,
        down_at    INTEGER NOT NULL
    );
    """,
    # 17: bots, second part (SPEC.md 26). A bot's edit now replaces the stored message
    # (messages.body), so bot_edits goes (edits made before this migration are dropped:
    # they never reached history, and a press is checked against the stored message).
    # bot_callbacks: presses waiting for the bot's answer, written in the commit that puts
    # the CALLBACK entry in the bot's log, deleted with the answer or when they expire.
    # bots.deleted: when the bot was deleted (0: alive); its row stays as a tombstone, its
    # name taken until the quarantine is over, then the account is renamed to free it.
    """
    DROP TABLE bot_edits;
    CREATE TABLE bot_callbacks (
        id      INTEGER PRIMARY KEY,
        bot     INTEGER NOT NULL,
        presser INTEGER NOT NULL,
        conv_id INTEGER NOT NULL,
        pos     INTEGER NOT NULL,
        created INTEGER NOT NULL,
        entry   BLOB NOT NULL,                    -- the CALLBACK entry's data (msgpack)
        seq     INTEGER NOT NULL                  -- ... and its seq in the bot's log
    );
    CREATE INDEX bot_callbacks_by_bot ON bot_callbacks (bot, seq);
    CREATE INDEX bot_callbacks_by_age ON bot_callbacks (created);
    ALTER TABLE bots ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
    """,
    # 18: what nearby keeps across a restart besides the shares (SPEC.md 29.2, 29.3): the
    # district (H3 resolution 5) and time of a user's last share after it stopped or
    # expired, for a day, for the next share's jump check; and the hellos of the user's
    # current UTC day. A share's refresh that changes neither its cell nor its expiry is
    # not written at all (chat/rules/nearby.share).
    """
    CREATE TABLE nearby_last (
        user_id INTEGER PRIMARY KEY,
        area    INTEGER NOT NULL,                 -- H3 resolution 5
        at      INTEGER NOT NULL                  -- ms: when that share's cell was set
    );
    CREATE INDEX nearby_last_by_at ON nearby_last (at);  -- the sweep forgets a day later
    CREATE TABLE nearby_hellos (
        user_id INTEGER PRIMARY KEY,
        day     INTEGER NOT NULL,                 -- UTC days since the epoch
        hellos  INTEGER NOT NULL
    );
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)


# ---------------------------------------------------------------------- the writer's connection

WAL_SIZE_LIMIT = 64 * 1024 * 1024  # bytes a reset WAL file is truncated back to


def connect_writer(path: str, synchronous: str) -> sqlite3.Connection:
    """In the writer thread: connect, set the pragmas, migrate."""
    w = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        for pragma in (
            "journal_mode=WAL",
            f"synchronous={synchronous}",
            "busy_timeout=5000",
            "foreign_keys=ON",
            # A multi-row INSERT into the update logs touches one page per member; SQLite
            # journals every page a statement changes to a temporary file so it can undo
            # just that statement. In memory, that journal costs no write calls (measured:
            # ~2,400 write calls per 500-member group message before, ~200 after), and a
            # 64 MiB page cache keeps the members' log pages resident between commits.
            "temp_store=MEMORY",
            "cache_size=-65536",
            # Checkpoints run on their own connection beside the writer (checkpoint.py),
            # not inside whichever COMMIT crosses 1,000 WAL pages: measured under load,
            # that made every few commits 3-5x slower, and every SENT behind them waited.
            "wal_autocheckpoint=0",
            f"journal_size_limit={WAL_SIZE_LIMIT}",
        ):
            w.execute(f"PRAGMA {pragma}").fetchall()
        migrate(w)
    except BaseException:
        w.close()
        raise
    return w


def migrate(w: sqlite3.Connection) -> None:
    """Apply the migrations the database lacks, one transaction each."""
    (version,) = w.execute("PRAGMA user_version").fetchone()
    if version > len(MIGRATIONS):
        raise RuntimeError(
            f"database schema {version} is newer than this server ({len(MIGRATIONS)})"
        )
    for n in range(version, len(MIGRATIONS)):
        log.info("applying schema migration %d", n + 1)
        w.execute("BEGIN IMMEDIATE")
        try:
            for stmt in statements(MIGRATIONS[n]):
                w.execute(stmt)
            w.execute(f"PRAGMA user_version={n + 1}")
            w.execute("COMMIT")
        except BaseException:
            w.execute("ROLLBACK")
            raise


def statements(script: str) -> list[str]:
    """Split a migration into statements (comments dropped first: they may hold ';')."""
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
