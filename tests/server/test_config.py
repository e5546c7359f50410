"""Server configuration: defaults, TOML file < LIAOTIAN_* environment < flags, validation,
and the command-line parser."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from liaotian.protocol import Limits
from liaotian.server.cli import build_parser, main
from liaotian.server.config import Config


def toml(tmp_path: Path, text: str) -> str:
    path = tmp_path / "liaotian.toml"
    path.write_text(text)
    return str(path)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("LIAOTIAN_"):
            monkeypatch.delenv(key)


def test_defaults() -> None:
    c = Config()
    assert (c.host, c.port, c.synchronous) == ("127.0.0.1", 7420, "full")
    assert (c.db_path, c.log_level) == ("liaotian.db", "info")
    assert (c.login_failures_per_account, c.login_failures_per_address, c.login_window) == \
        (5, 20, 900.0)
    assert (c.argon2_time_cost, c.argon2_memory_kib) == (3, 65536)
    assert Config.load(env={}) == c
    # the protocol limits it derives are the documented defaults
    assert c.limits() == Limits()
    assert c.limits().advertised() == {
        "max_frame_size": 1048576, "max_text_len": 65536, "max_meta_size": 16384,
        "max_cmid_len": 64, "max_sync_page": 1000, "max_history_page": 200,
        "idle_timeout": 90.0, "auth_timeout": 10.0, "max_inflight_requests": 256}


def test_precedence_flags_over_env_over_file(tmp_path) -> None:
    file = toml(tmp_path, 'port = 1000\nhost = "0.0.0.0"\nlog_level = "debug"\n'
                          'idle_timeout = 120.0\n')
    env = {"LIAOTIAN_PORT": "2000", "LIAOTIAN_LOG_LEVEL": "warning",
           "LIAOTIAN_SYNCHRONOUS": "normal", "UNRELATED": "x"}
    flags = {"port": 3000, "synchronous": None, "db_path": None}
    c = Config.load(file=file, env=env, flags=flags)
    assert c.port == 3000  # flag beats env and file
    assert c.log_level == "warning"  # env beats file
    assert c.synchronous == "normal"  # a None flag is "not given"
    assert c.host == "0.0.0.0" and c.idle_timeout == 120.0  # file beats defaults
    assert c.db_path == "liaotian.db"  # untouched default

    assert Config.load(file=file, env={}).port == 1000
    assert Config.load(env=env).port == 2000


def test_file_may_use_a_server_table(tmp_path) -> None:
    file = toml(tmp_path, '[server]\nport = 4321\nmax_connections = 7\n')
    c = Config.load(file=file, env={})
    assert (c.port, c.max_connections) == (4321, 7)


def test_environment_is_read_from_os_environ(monkeypatch) -> None:
    monkeypatch.setenv("LIAOTIAN_PORT", "5555")
    monkeypatch.setenv("LIAOTIAN_HEARTBEAT_INTERVAL", "12.5")
    c = Config.load()
    assert (c.port, c.heartbeat_interval) == (5555, 12.5)


def test_unknown_keys_are_rejected(tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown setting 'prot'"):
        Config.load(file=toml(tmp_path, "prot = 1\n"), env={})
    with pytest.raises(ValueError, match="unknown"):
        Config.load(file=toml(tmp_path, '[server]\nport = 1\nbogus = "x"\n'), env={})
    with pytest.raises(ValueError, match="unknown"):
        Config().with_overrides({"no_such_setting": 1})
    with pytest.raises(ValueError, match="unknown"):
        Config.load(env={}, flags={"colour": "blue"})


@pytest.mark.parametrize(("key", "value"), [
    ("port", "abc"), ("port", True), ("port", [1]), ("idle_timeout", "soon"),
    ("max_batch", "12x"), ("login_window", None),
])
def test_type_errors_are_rejected(key, value) -> None:
    with pytest.raises(ValueError, match=key):
        Config().with_overrides({key: value})


def test_type_errors_from_file_and_env(tmp_path) -> None:
    with pytest.raises(ValueError, match="port"):
        Config.load(file=toml(tmp_path, 'port = "high"\n'), env={})
    with pytest.raises(ValueError, match="port"):
        Config.load(env={"LIAOTIAN_PORT": "seven"})
    with pytest.raises(ValueError, match="port"):
        Config.load(file=toml(tmp_path, "port = true\n"), env={})


@pytest.mark.parametrize(("key", "value"), [("port", 7420.9), ("max_batch", 2.5)])
def test_fractional_float_for_an_int_setting_is_rejected(key, value) -> None:
    """Regression: int() used to truncate it silently."""
    with pytest.raises(ValueError):
        Config().with_overrides({key: value})


def test_bool_for_a_float_setting_is_rejected(tmp_path) -> None:
    """Regression: a TOML bool used to become 1.0/0.0."""
    with pytest.raises(ValueError):
        Config.load(file=toml(tmp_path, "idle_timeout = true\nheartbeat_interval = 0.5\n"),
                    env={})


def test_string_numbers_are_coerced() -> None:
    c = Config().with_overrides({"port": "8080", "idle_timeout": "100", "max-batch": "64"})
    assert (c.port, c.idle_timeout, c.max_batch) == (8080, 100.0, 64)
    assert isinstance(c.idle_timeout, float)


def test_inconsistent_limits_are_rejected() -> None:
    with pytest.raises(ValueError, match="max_frame_size"):
        Config(max_frame_size=60_000)
    with pytest.raises(ValueError, match="idle_timeout"):
        Config(idle_timeout=10.0, heartbeat_interval=10.0)
    Config(max_frame_size=200_000, max_text_len=60_000, max_meta_size=1000)


def test_config_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Config().port = 1  # type: ignore[misc]


def test_cli_parser_builds_a_config() -> None:
    parser = build_parser()
    args = vars(parser.parse_args([
        "--port", "9000", "--db-path", "/tmp/x.db", "--synchronous", "normal",
        "--idle-timeout", "120", "--max-connections", "50", "--host", "0.0.0.0"]))
    assert args.pop("config") is None
    assert args["port"] == 9000 and args["idle_timeout"] == 120.0
    assert args["log_level"] is None  # flags not given stay None: lower layers decide
    c = Config.load(env={"LIAOTIAN_PORT": "1", "LIAOTIAN_LOG_LEVEL": "debug"}, flags=args)
    assert (c.port, c.db_path, c.synchronous, c.idle_timeout, c.max_connections, c.host) == \
        (9000, "/tmp/x.db", "normal", 120.0, 50, "0.0.0.0")
    assert c.log_level == "debug"
    # every Config field has a flag
    dests = {a.dest for a in parser._actions}
    assert {f.name for f in dataclasses.fields(Config)} <= dests


def test_cli_parser_rejects_bad_values(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["--port", "abc"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--no-such-flag"])
    capsys.readouterr()


def test_cli_main_reports_config_errors_without_starting(tmp_path, capsys) -> None:
    assert main(["--max-frame-size", "1000"]) == 2
    assert "max_frame_size" in capsys.readouterr().err
    assert main(["--config", str(tmp_path / "missing.toml")]) == 2
    assert "liaotian-server:" in capsys.readouterr().err
    assert main(["--config", toml(tmp_path, "nope = 1\n")]) == 2
    assert "unknown setting" in capsys.readouterr().err


def test_invalid_synchronous_is_rejected_by_config(capsys) -> None:
    """Regression: it used to fail only later, inside SQLiteStore() at start-up."""
    with pytest.raises(ValueError, match="synchronous"):
        Config.load(env={}, flags={"synchronous": "bogus"})
    assert main(["--synchronous", "off"]) == 2
    assert "synchronous" in capsys.readouterr().err
    for ok in ("full", "normal", "extra"):
        assert Config.load(env={}, flags={"synchronous": ok}).synchronous == ok


@pytest.mark.parametrize("n", [0, 65])
def test_read_connections_out_of_range_is_refused(n: int) -> None:
    with pytest.raises(ValueError, match="read_connections"):
        Config(read_connections=n)
