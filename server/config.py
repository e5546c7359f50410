"""Server configuration: defaults, then an optional TOML file, then LIAOTIAN_* environment
variables, then command-line flags. The result is one frozen Config.

Every setting is checked when a Config is made: against its row in RULES (the allowed
range, or the allowed words), then the checks that relate settings to each other
(__post_init__). A setting without a row in RULES gets DEFAULT_NUMBER (a finite number,
0 or more) or, for text, no check. `liaotian-server --help` shows each range.
"""

from __future__ import annotations

import json
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from liaotian.protocol import Limits
from liaotian.protocol.wallet import MAX_SHARES, TASK_TRIGGERS

from .chat.ledger import DAY_MS, Task

ENV_PREFIX = "LIAOTIAN_"
_SUBJECT_TOKENS = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")


@dataclass(frozen=True, slots=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 7420
    db_path: str = "liaotian.db"
    # PostgreSQL instead of SQLite (store/postgres/): "" keeps SQLite at db_path
    db_url: str = ""
    synchronous: str = "full"  # full: durable on power loss; normal: only on process crash
    log_level: str = "info"
    tls_cert: str = ""  # PEM certificate chain; with tls_key, the listener speaks TLS only
    tls_key: str = ""
    # protocol limits (advertised in WELCOME)
    max_frame_size: int = 1024 * 1024
    max_text_len: int = 64 * 1024
    max_meta_size: int = 16 * 1024
    max_sync_page: int = 1000
    max_history_page: int = 200
    max_inflight_requests: int = 256
    heartbeat_interval: float = 30.0
    idle_timeout: float = 90.0
    auth_timeout: float = 10.0
    # connections
    max_connections: int = 15_000
    max_connections_per_address: int = 64  # open connections from one address; 0 = no limit
    max_outbound_buffer: int = 8 * 1024 * 1024  # bytes queued to one peer before eviction
    write_timeout: float = 30.0  # seconds a peer may leave its socket unread
    shutdown_grace: float = 10.0
    # storage
    retention_days: float = 30.0  # update-log horizon; 0 keeps everything
    max_batch: int = 2048  # writes per group commit at most
    stats_interval: float = 60.0  # seconds between writer-statistics log lines; 0 = none
    # social layer
    max_group_size: int = 500  # members, owner included
    max_channel_members: int = 100_000  # members of one channel, owner included
    presence_interval: float = 2.0  # seconds: presence changes are published this often
    typing_ttl: float = 6.0  # seconds a typing notice lasts unless renewed
    typing_rate: float = 2.0  # typing notices per second per conversation and connection
    typing_burst: float = 3.0
    # per-user send limits (all of a user's devices together), token buckets
    send_rate: float = 100.0  # messages per second
    send_burst: float = 1000.0
    send_bytes_rate: float = 1024.0 * 1024.0  # text + meta bytes per second
    send_bytes_burst: float = 8.0 * 1024.0 * 1024.0
    # a bot's own send limits (SPEC.md 26.1), instead of send_rate and send_burst
    bot_send_rate: float = 30.0  # messages per second
    bot_send_burst: float = 60.0
    max_bots_per_user: int = 20
    # accounts
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    argon2_parallelism: int = 4
    login_failures_per_account: int = 100  # over all addresses: a ceiling, not a lock-out
    login_failures_per_address: int = 20  # over all accounts
    login_window: float = 900.0  # seconds over which failures count
    # --- transport
    max_preauth_frame_size: int = 8 * 1024  # bytes in a client frame before AUTHENTICATED
    max_preauth_frames: int = 32  # client frames before AUTHENTICATED, per connection
    max_connections_per_user: int = 16  # authenticated connections of one user; 0 = no limit
    max_outbound_total: int = 256 * 1024 * 1024  # unread bytes queued to all peers together
    # --- auth
    login_free_failures: int = 5  # per (account, address) before each attempt is delayed
    login_delay: float = 1.0  # seconds after the first delayed failure; doubles per failure
    login_max_delay: float = 60.0  # the delay of one (account, address) grows to this
    register_rate: float = 0.02  # registrations per second per address (token bucket)
    register_burst: float = 10.0
    argon2_max_concurrent: int = 4  # argon2 hashes at once; memory <= this * argon2_memory_kib
    register_max_concurrent: int = 1  # of which REGISTER may use; beyond: RATE_LIMITED
    token_idle_days: float = 30.0  # a token unused longer is refused (0 = never expires)
    max_devices_per_user: int = 32
    # --- writes
    # per-user write limits (all of a user's devices together), token buckets
    write_rate: float = 20.0  # write requests other than SEND per second
    write_burst: float = 200.0
    write_rows_rate: float = 2000.0  # update-log rows written per second, SEND included
    write_rows_burst: float = 20_000.0
    # per-user state
    max_groups_owned: int = 100  # groups a user owns
    max_groups_joined: int = 1000  # groups a user is a member of, owned ones included
    max_contacts: int = 5000
    max_outgoing_requests: int = 1000  # contact requests sent and not yet answered
    # --- reads
    read_connections: int = 2  # SQLite reader connections, served per user in turn
    # --- operations (server/ops/)
    log_format: str = "text"  # text, or json: one JSON object per line
    metrics_port: int = -1  # Prometheus /metrics on this port; -1 = off, 0 = any free port
    metrics_host: str = "127.0.0.1"
    admin_socket: str = ""  # Unix socket of `liaotian-server admin`; "" = <db_path>.admin
    # --- the wallet: the task catalogue as JSON (in a file: a [wallet] table, see
    # wallet_settings), red packets' time to expiry, their shares at most
    wallet_tasks: str = '[{"name": "checkin", "trigger": "checkin", "reward": 10}]'
    packet_ttl: float = 86_400.0  # seconds until a red packet's rest returns to its sender
    max_packet_shares: int = 1000
    # --- media (SPEC.md 27; server/media/, handlers/media.py)
    media_dir: str = ""  # blobs and partial uploads; "" = <db_path>.media
    media_max_blob_size: int = 100 * 1024 * 1024  # bytes of one blob
    media_max_uploads: int = 4  # unfinished uploads of one user
    media_upload_bytes_per_day: int = 1024 * 1024 * 1024  # per user, a bucket over 24 h
    media_download_bytes_per_day: int = 4 * 1024 * 1024 * 1024
    media_upload_ttl: float = 86_400.0  # seconds an upload lasts without a chunk
    media_unreferenced_grace: float = 86_400.0  # seconds before an unreferenced blob goes
    media_free_disk_floor: int = 1024 * 1024 * 1024  # bytes of free disk uploads leave
    media_max_voice_ms: int = 15 * 60 * 1000
    media_max_track_ms: int = 60 * 60 * 1000
    media_inflight: int = 8  # chunk and download requests in progress per connection
    media_workers: int = 2  # threads hashing, writing and inspecting media
    media_sweep_interval: float = 600.0  # seconds between expiry and collection passes
    media_sync_every: int = 32 * 1024 * 1024  # bytes of an upload between data syncs
    # --- the cluster (server/cluster/, docs/cluster.md): off unless cluster_nats is set
    cluster_nats: str = ""  # NATS server URL(s), comma-separated: nats://127.0.0.1:4222
    cluster_node: str = ""  # this node's name in logs and notices; "" = <host>:<port>
    cluster_prefix: str = "liaotian"  # subject prefix: clusters sharing a NATS stay apart
    cluster_sweep_interval: float = 30.0  # seconds between checks of every session's log

    def __post_init__(self) -> None:
        check_ranges(self)
        if self.argon2_memory_kib < 8 * self.argon2_parallelism:
            raise ValueError(
                "argon2_memory_kib must be at least 8 x argon2_parallelism (argon2's minimum)"
            )
        if self.max_text_len + self.max_meta_size + 1024 > self.max_frame_size:
            raise ValueError(
                "max_frame_size must exceed max_text_len + max_meta_size + 1 KiB "
                "so that any accepted message fits in one frame"
            )
        if self.send_bytes_burst < self.max_text_len + self.max_meta_size:
            raise ValueError("send_bytes_burst must hold at least one largest message")
        if self.db_url and not self.db_url.startswith(("postgresql://", "postgres://")):
            raise ValueError("db_url must be a postgresql:// URL (or empty: SQLite)")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("tls_cert and tls_key go together")
        if self.idle_timeout <= self.heartbeat_interval:
            raise ValueError("idle_timeout must be longer than heartbeat_interval")
        if self.max_preauth_frame_size > self.max_frame_size:
            raise ValueError("max_preauth_frame_size must not exceed max_frame_size")
        if self.max_outbound_total < self.max_outbound_buffer:
            raise ValueError("max_outbound_total must be at least max_outbound_buffer")
        if self.register_max_concurrent > self.argon2_max_concurrent:
            raise ValueError("register_max_concurrent must not exceed argon2_max_concurrent")
        if self.write_rows_burst < 2 * self.max_group_size:
            raise ValueError(
                "setting 'write_rows_burst' must be at least 2 * max_group_size "
                "(a GROUP_UPDATE of a full group writes that many rows)"
            )
        if self.max_groups_joined < self.max_groups_owned:
            raise ValueError("setting 'max_groups_joined' must be at least max_groups_owned")
        if self.media_upload_bytes_per_day < self.media_max_blob_size:
            raise ValueError(
                "setting 'media_upload_bytes_per_day' must be at least "
                "media_max_blob_size (one largest blob)"
            )
        if not _SUBJECT_TOKENS.fullmatch(self.cluster_prefix):
            raise ValueError(
                "setting 'cluster_prefix' must be NATS subject tokens (letters, digits, "
                "- and _) joined by dots"
            )
        self.tasks()  # a malformed catalogue is refused at start

    def tasks(self) -> tuple[Task, ...]:
        """The task catalogue (`wallet_tasks`), checked: ValueError naming what is wrong."""
        return parse_tasks(self.wallet_tasks)

    def limits(self) -> Limits:
        return Limits(
            max_frame_size=self.max_frame_size,
            max_text_len=self.max_text_len,
            max_meta_size=self.max_meta_size,
            max_sync_page=self.max_sync_page,
            default_sync_page=min(500, self.max_sync_page),
            max_history_page=self.max_history_page,
            default_history_page=min(50, self.max_history_page),
            heartbeat_interval=self.heartbeat_interval,
            idle_timeout=self.idle_timeout,
            auth_timeout=self.auth_timeout,
            max_inflight_requests=self.max_inflight_requests,
            max_preauth_frame_size=self.max_preauth_frame_size,
            max_preauth_frames=self.max_preauth_frames,
        )

    def rates(self) -> dict[str, float]:
        """The pacing WELCOME advertises (SPEC.md 5, `limits.rates`): what a client needs to
        stay under the server's token buckets and to time its typing and presence, without
        learning them from RATE_LIMITED errors."""
        return {
            "presence_interval": float(self.presence_interval),
            "typing_rate": float(self.typing_rate),
            "typing_burst": float(self.typing_burst),
            "send_rate": float(self.send_rate),
            "send_burst": float(self.send_burst),
            "write_rate": float(self.write_rate),
            "write_burst": float(self.write_burst),
        }

    def with_overrides(self, values: Mapping[str, Any]) -> Config:
        return replace(self, **_coerce_all(values))

    @classmethod
    def load(
        cls,
        *,
        file: str | None = None,
        env: Mapping[str, str] | None = None,
        flags: Mapping[str, Any] | None = None,
    ) -> Config:
        """Merge the layers, then check the result once: each layer may rely on another
        (a file raising max_text_len, a flag raising max_frame_size to match). Errors are
        ValueErrors whose text names the setting and where its value came from."""
        values: dict[str, Any] = {}
        origin: dict[str, str] = {}

        def layer(where: str, items: Mapping[str, Any], name_source: Any = None) -> None:
            for key, value in items.items():
                source = name_source(key) if name_source else where
                try:
                    ((name, coerced),) = _coerce_all({key: value}).items()
                except ValueError as exc:
                    raise ValueError(f"{source}: {exc}") from None
                values[name] = coerced
                origin[name] = source

        if file:
            layer(f"config file {file}", _read_file(file))
        env = os.environ if env is None else env
        layer(
            "",
            {
                f.name: env[ENV_PREFIX + f.name.upper()]
                for f in fields(cls)
                if ENV_PREFIX + f.name.upper() in env
            },
            lambda key: ENV_PREFIX + key.upper(),
        )
        layer(
            "",
            {k: v for k, v in (flags or {}).items() if v is not None},
            lambda key: "--" + key.replace("_", "-"),
        )
        try:
            return cls(**values)
        except SettingError as exc:
            if exc.name in origin:
                raise ValueError(f"{exc} (from {origin[exc.name]})") from None
            raise


def _read_file(file: str) -> Mapping[str, Any]:
    """The settings in a TOML file: its top level, or its [server] table if it has one."""
    try:
        with open(file, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ValueError(f"config file {file}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"config file {file}: not valid TOML: {exc}") from None
    wallet = wallet_settings(data.pop("wallet"), file) if "wallet" in data else {}
    if "server" not in data:
        return {**data, **wallet}
    table = data["server"]
    if not isinstance(table, dict):
        raise ValueError(
            f"config file {file}: 'server' must be a table of settings ([server]), got {table!r}"
        )
    stray = [k for k, v in data.items() if k != "server" and not isinstance(v, dict)]
    if stray:
        raise ValueError(
            f"config file {file}: setting {stray[0]!r} is outside the [server] "
            f"table (put every setting in it, or none)"
        )
    return {**table, **wallet}


class SettingError(ValueError):
    """A setting outside its allowed range; `name` is the setting."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


@dataclass(frozen=True, slots=True)
class Rule:
    """The values one setting allows.

    Numbers: finite, `lo` <= value <= `hi` (None: no bound); with `above`, value > `lo`.
    Text: one of `choices` (any case) if given; not empty if `required`.
    `note` says what special values mean; it is shown in --help and in errors.
    """

    lo: float | None = 0
    hi: float | None = None
    above: bool = False
    choices: tuple[str, ...] = ()
    required: bool = False
    note: str = ""

    def describe(self, kind: str = "int") -> str:
        if kind not in ("int", "float"):
            if self.choices:
                text = "one of " + ", ".join(self.choices)
            else:
                text = "non-empty text" if self.required else "any text"
        elif self.lo is None and self.hi is None:
            text = "any number"
        elif self.lo is None:
            text = f"at most {_num(self.hi)}"
        elif self.hi is None:
            text = f"more than {_num(self.lo)}" if self.above else f"at least {_num(self.lo)}"
        elif self.above:
            text = f"more than {_num(self.lo)} and at most {_num(self.hi)}"
        else:
            text = f"{_num(self.lo)} to {_num(self.hi)}"
        return f"{text} ({self.note})" if self.note else text

    def allows(self, value: Any) -> bool:
        if isinstance(value, int | float) and not isinstance(value, bool):
            if not math.isfinite(value):
                return False
            if self.lo is not None and (value <= self.lo if self.above else value < self.lo):
                return False
            return self.hi is None or value <= self.hi
        if isinstance(value, str):
            if self.choices and value.lower() not in self.choices:
                return False
            return bool(value) or not self.required
        return True


def _num(x: float | None) -> str:
    return str(int(x)) if x is not None and float(x).is_integer() else str(x)


MIB = 1024 * 1024
HOUR = 3600.0
DAY = 86400.0
# The allowed range of each setting: data, checked in one place (check_ranges). A setting
# with no row here gets DEFAULT_NUMBER if it is a number, DEFAULT_TEXT if text; a new
# setting declares its own range by adding a row, e.g. "max_groups_per_user": Rule(0,
# 100_000, note="0: none").
DEFAULT_NUMBER = Rule(lo=0)
DEFAULT_TEXT = Rule()
RULES: dict[str, Rule] = {
    "host": Rule(required=True, note="0.0.0.0 or :: listens on every interface"),
    "port": Rule(0, 65535, note="0: any free port"),
    "db_path": Rule(required=True),
    "db_url": Rule(note="postgresql://user@host:port/db; empty: SQLite at db_path"),
    "synchronous": Rule(choices=("full", "extra", "normal")),
    "log_level": Rule(choices=("debug", "info", "warning", "error", "critical")),
    "tls_cert": Rule(note="PEM file; empty: plain TCP"),
    "tls_key": Rule(note="PEM file; set with tls_cert"),
    "max_frame_size": Rule(4096, 64 * MIB, note="bytes; above max_text_len + max_meta_size + 1024"),
    "max_text_len": Rule(1, note="bytes"),
    "max_meta_size": Rule(0, note="bytes"),
    "max_sync_page": Rule(1, 100_000),
    "max_history_page": Rule(1, 100_000),
    "max_inflight_requests": Rule(1, 65_536),
    "heartbeat_interval": Rule(0, HOUR, above=True, note="seconds"),
    "idle_timeout": Rule(0, DAY, above=True, note="seconds; above heartbeat_interval"),
    "auth_timeout": Rule(0, HOUR, above=True, note="seconds"),
    "max_connections": Rule(1, 10_000_000),
    "max_connections_per_address": Rule(0, note="0: no limit"),
    "max_outbound_buffer": Rule(1024, note="bytes"),
    "write_timeout": Rule(0, HOUR, above=True, note="seconds"),
    "shutdown_grace": Rule(0, HOUR, note="seconds"),
    "retention_days": Rule(0, 36_500, note="0: keep everything"),
    "max_batch": Rule(1, 1_000_000),
    "stats_interval": Rule(0, DAY, note="seconds; 0: no statistics lines"),
    "max_group_size": Rule(2, 1_000_000, note="members, owner included"),
    "max_channel_members": Rule(1, 100_000_000, note="members of one channel, owner included"),
    "presence_interval": Rule(0, HOUR, above=True, note="seconds"),
    "typing_ttl": Rule(0, HOUR, above=True, note="seconds"),
    "typing_rate": Rule(0, above=True, note="per second"),
    "typing_burst": Rule(1),
    "send_rate": Rule(0, above=True, note="messages per second"),
    "send_burst": Rule(1),
    "bot_send_rate": Rule(0, above=True, note="a bot's messages per second"),
    "bot_send_burst": Rule(1),
    "max_bots_per_user": Rule(0, note="bots one user owns at most"),
    "send_bytes_rate": Rule(0, above=True, note="bytes per second"),
    "send_bytes_burst": Rule(1, note="bytes; at least max_text_len + max_meta_size"),
    "argon2_time_cost": Rule(1, 100),
    "argon2_memory_kib": Rule(8, 4 * MIB, note="KiB; at least 8 x argon2_parallelism"),
    "argon2_parallelism": Rule(1, 64),
    "login_failures_per_account": Rule(1),
    "login_failures_per_address": Rule(1),
    "login_window": Rule(0, 7 * DAY, above=True, note="seconds"),
    # transport
    "max_preauth_frame_size": Rule(1024, 64 * MIB, note="bytes; at most max_frame_size"),
    "max_preauth_frames": Rule(4, 1_000_000, note="HELLO, REGISTER, LOGIN and PING fit"),
    "max_connections_per_user": Rule(0, 1_000_000, note="0: no limit"),
    "max_outbound_total": Rule(1024, note="bytes; at least max_outbound_buffer"),
    # accounts
    "login_free_failures": Rule(0, 1_000),
    "login_delay": Rule(0, HOUR, above=True, note="seconds"),
    "login_max_delay": Rule(0, DAY, above=True, note="seconds"),
    "register_rate": Rule(0, above=True, note="per second and address"),
    "register_burst": Rule(1),
    "argon2_max_concurrent": Rule(1, 1_024),
    "register_max_concurrent": Rule(1, 1_024, note="at most argon2_max_concurrent"),
    "token_idle_days": Rule(0, 36_500, note="0: tokens never expire"),
    "max_devices_per_user": Rule(1, 100_000),
    # writes
    "write_rate": Rule(0, above=True, note="requests per second"),
    "write_burst": Rule(1),
    "write_rows_rate": Rule(0, above=True, note="update-log rows per second"),
    "write_rows_burst": Rule(1, note="rows; at least 2 x max_group_size"),
    "max_groups_owned": Rule(1, 10_000_000),
    "max_groups_joined": Rule(1, 10_000_000, note="at least max_groups_owned"),
    "max_contacts": Rule(1, 10_000_000),
    "max_outgoing_requests": Rule(1, 10_000_000),
    # reads
    "read_connections": Rule(1, 64),
    # operations
    "log_format": Rule(choices=("text", "json")),
    "metrics_port": Rule(-1, 65535, note="-1: off; 0: any free port"),
    "metrics_host": Rule(required=True, note="0.0.0.0 or :: serves every interface"),
    "admin_socket": Rule(note="Unix socket path; empty: <db_path>.admin; off: none"),
    # the wallet
    "wallet_tasks": Rule(
        note='JSON: [{"name", "trigger", "reward", "period", "cap", '
        '"offset_hours", "item"}, ...]; in a file, [[wallet.tasks]] '
        "tables"
    ),
    "packet_ttl": Rule(1, 30 * DAY, note="seconds"),
    "max_packet_shares": Rule(1, MAX_SHARES),
    # media
    "media_dir": Rule(note="directory of blobs; empty: <db_path>.media"),
    "media_max_blob_size": Rule(1, 1 << 40, note="bytes"),
    "media_max_uploads": Rule(1, 10_000, note="unfinished uploads per user"),
    "media_upload_bytes_per_day": Rule(1, note="bytes; at least media_max_blob_size"),
    "media_download_bytes_per_day": Rule(1 * MIB, note="bytes"),
    "media_upload_ttl": Rule(0, 365 * DAY, above=True, note="seconds"),
    "media_unreferenced_grace": Rule(0, 365 * DAY, note="seconds"),
    "media_free_disk_floor": Rule(0, note="bytes"),
    "media_max_voice_ms": Rule(1000, 24 * 3600 * 1000, note="milliseconds"),
    "media_max_track_ms": Rule(1000, 24 * 3600 * 1000, note="milliseconds"),
    "media_inflight": Rule(1, 1024, note="requests per connection"),
    "media_workers": Rule(1, 64, note="threads"),
    "media_sweep_interval": Rule(0, DAY, above=True, note="seconds"),
    "media_sync_every": Rule(64 * 1024, 1 << 30, note="bytes a crash may cost an upload"),
    # the cluster
    "cluster_nats": Rule(note="nats://host:port[,...]; empty: a single node, no cluster"),
    "cluster_node": Rule(note="empty: <host>:<port>"),
    "cluster_prefix": Rule(required=True, note="NATS subject prefix, letters, digits, - and _"),
    "cluster_sweep_interval": Rule(0, DAY, above=True, note="seconds"),
}


PERIODS = {"day": DAY_MS, "week": 7 * DAY_MS, "ever": 0}


def parse_tasks(text: str) -> tuple[Task, ...]:
    """The task catalogue from its JSON text: a list of objects with `name`, `trigger`
    (checkin, message or invite), `reward` (coins, 0 or more), and optionally `period`
    ("day", the default; "week"; "ever"; or seconds), `cap` (completions paid per period,
    default 1), `offset_hours` (where a period starts, from UTC midnight) and `item` (the
    kind of item each completion grants)."""
    where = "setting 'wallet_tasks'"
    try:
        raw = json.loads(text) if text.strip() else []
    except ValueError as exc:
        raise ValueError(f"{where} is not valid JSON: {exc}") from None
    if not isinstance(raw, list):
        raise ValueError(f"{where} must be a list of tasks")
    tasks: list[Task] = []
    for i, t in enumerate(raw):

        def bad(why: str, i: int = i) -> ValueError:
            return ValueError(f"{where}: task {i + 1} {why}")

        if not isinstance(t, dict):
            raise bad("must be a table")
        unknown = set(t) - {"name", "trigger", "reward", "period", "cap", "offset_hours", "item"}
        if unknown:
            raise bad(f"has unknown keys {sorted(unknown)}")
        name, trigger, item = t.get("name"), t.get("trigger"), t.get("item", "")
        if not isinstance(name, str) or not 1 <= len(name) <= 64:
            raise bad("needs a name of 1 to 64 characters")
        if trigger not in TASK_TRIGGERS:
            raise bad(f"needs a trigger, one of {', '.join(TASK_TRIGGERS)}")
        reward, cap = t.get("reward"), t.get("cap", 1)
        if type(reward) is not int or not 0 <= reward <= 10**12:
            raise bad("needs a reward, a whole number of coins 0 .. 10^12")
        if type(cap) is not int or not 1 <= cap <= 1_000_000:
            raise bad("has a cap outside 1 .. 1000000")
        period = t.get("period", "day")
        if isinstance(period, str) and period in PERIODS:
            period_ms = PERIODS[period]
        elif (
            isinstance(period, int | float)
            and not isinstance(period, bool)
            and 1 <= period <= 366 * DAY
        ):
            period_ms = int(period * 1000)
        else:
            raise bad("has a period that is not day, week, ever or 1 .. 31622400 seconds")
        offset = t.get("offset_hours", 0)
        if (
            not isinstance(offset, int | float)
            or isinstance(offset, bool)
            or not -24 <= offset <= 24
        ):
            raise bad("has offset_hours outside -24 .. 24")
        if not isinstance(item, str) or len(item) > 32:
            raise bad("has an item kind longer than 32 characters")
        if any(x.name == name for x in tasks):
            raise bad(f"repeats the name {name!r}")
        tasks.append(Task(name, trigger, reward, period_ms, cap, int(offset * 3_600_000), item))
    return tuple(tasks)


def wallet_settings(table: Any, file: str) -> dict[str, Any]:
    """The settings a config file's [wallet] table gives: `tasks` (an array of tables,
    [[wallet.tasks]]) as `wallet_tasks`, and `packet_ttl`, `max_packet_shares`."""
    if not isinstance(table, dict):
        raise ValueError(f"config file {file}: 'wallet' must be a table")
    out: dict[str, Any] = {}
    for key, value in table.items():
        if key == "tasks":
            out["wallet_tasks"] = json.dumps(value)
        elif key in ("packet_ttl", "max_packet_shares"):
            out[key] = value
        else:
            raise ValueError(f"config file {file}: unknown setting {key!r} in [wallet]")
    return out


def rule_for(name: str) -> Rule:
    """The range of setting `name`: its row in RULES, or the default for its type."""
    rule = RULES.get(name)
    if rule is not None:
        return rule
    return DEFAULT_NUMBER if _FIELD_TYPES.get(name) in ("int", "float") else DEFAULT_TEXT


def check_ranges(config: Config) -> None:
    """Raise SettingError for the first setting outside its range."""
    for f in fields(config):
        value = getattr(config, f.name)
        rule = rule_for(f.name)
        if not rule.allows(value):
            raise SettingError(
                f.name, f"setting {f.name!r} must be {rule.describe(str(f.type))}, got {value!r}"
            )


_FIELD_TYPES = {f.name: f.type for f in fields(Config)}


def _coerce_all(values: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in values.items():
        key = key.replace("-", "_")
        if key not in _FIELD_TYPES:
            raise ValueError(f"unknown setting {key!r}")
        out[key] = _coerce(key, value)
    return out


def _coerce(key: str, value: Any) -> Any:
    kind = _FIELD_TYPES[key]
    try:
        if isinstance(value, bool):  # TOML true/false is never a number
            raise ValueError
        if kind == "int":
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if kind == "float":
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        raise ValueError(f"setting {key!r} needs a {kind}, got {value!r}") from None
