"""Server configuration: defaults, then an optional TOML file, then LIAOTIAN_* environment
variables, then command-line flags. The result is one frozen Config."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from liaotian.protocol import Limits

ENV_PREFIX = "LIAOTIAN_"


@dataclass(frozen=True, slots=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 7420
    db_path: str = "liaotian.db"
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
    max_connections_per_address: int = 0  # 0 = no per-address limit
    max_outbound_buffer: int = 8 * 1024 * 1024  # bytes queued to one peer before eviction
    write_timeout: float = 30.0  # seconds a peer may leave its socket unread
    shutdown_grace: float = 10.0
    # storage
    retention_days: float = 30.0  # update-log horizon; 0 keeps everything
    max_batch: int = 2048  # writes per group commit at most
    stats_interval: float = 60.0  # seconds between writer-statistics log lines; 0 = none
    # social layer
    max_group_size: int = 500  # members, owner included
    presence_interval: float = 2.0  # seconds: presence changes are published this often
    typing_ttl: float = 6.0  # seconds a typing notice lasts unless renewed
    typing_rate: float = 2.0  # typing notices per second per conversation and connection
    typing_burst: float = 3.0
    # per-user send limits (all of a user's devices together), token buckets
    send_rate: float = 100.0  # messages per second
    send_burst: float = 1000.0
    send_bytes_rate: float = 1024.0 * 1024.0  # text + meta bytes per second
    send_bytes_burst: float = 8.0 * 1024.0 * 1024.0
    # accounts
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    argon2_parallelism: int = 4
    login_failures_per_account: int = 5
    login_failures_per_address: int = 20
    login_window: float = 900.0  # seconds over which failures count
    # --- reads
    read_connections: int = 2  # SQLite reader connections, served per user in turn

    def __post_init__(self) -> None:
        if self.synchronous.lower() not in ("full", "extra", "normal"):
            raise ValueError("setting 'synchronous' must be full, extra or normal")
        if self.max_text_len + self.max_meta_size + 1024 > self.max_frame_size:
            raise ValueError("max_frame_size must exceed max_text_len + max_meta_size + 1 KiB "
                             "so that any accepted message fits in one frame")
        if self.send_bytes_burst < self.max_text_len + self.max_meta_size:
            raise ValueError("send_bytes_burst must hold at least one largest message")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("tls_cert and tls_key go together")
        if self.idle_timeout <= self.heartbeat_interval:
            raise ValueError("idle_timeout must be longer than heartbeat_interval")
        if not 1 <= self.read_connections <= 64:
            raise ValueError("read_connections must be between 1 and 64")

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
        )

    def with_overrides(self, values: Mapping[str, Any]) -> Config:
        return replace(self, **_coerce_all(values))

    @classmethod
    def load(cls, *, file: str | None = None, env: Mapping[str, str] | None = None,
             flags: Mapping[str, Any] | None = None) -> Config:
        cfg = cls()
        if file:
            with open(file, "rb") as fh:
                data = tomllib.load(fh)
            cfg = cfg.with_overrides(data.get("server", data))
        env = os.environ if env is None else env
        from_env = {f.name: env[ENV_PREFIX + f.name.upper()] for f in fields(cls)
                    if ENV_PREFIX + f.name.upper() in env}
        cfg = cfg.with_overrides(from_env)
        return cfg.with_overrides({k: v for k, v in (flags or {}).items() if v is not None})


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
