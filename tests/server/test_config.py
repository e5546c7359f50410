"""Server configuration: defaults, TOML file < LIAOTIAN_* environment < flags, validation,
and the command-line parser."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from liaotian.protocol import Limits
from liaotian.server import config as config_module
from liaotian.server.cli import build_parser, main
from liaotian.server.config import RULES, Config, SettingError, rule_for


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
    assert (c.login_failures_per_account, c.login_failures_per_address, c.login_window) == (
        100,
        20,
        900.0,
    )
    assert (c.login_free_failures, c.login_delay, c.login_max_delay) == (5, 1.0, 60.0)
    assert (c.register_rate, c.register_burst) == (0.02, 10.0)
    assert (c.argon2_max_concurrent, c.register_max_concurrent) == (4, 1)
    assert (c.token_idle_days, c.max_devices_per_user) == (30.0, 32)
    assert (c.argon2_time_cost, c.argon2_memory_kib) == (3, 65536)
    assert Config.load(env={}) == c
    # the protocol limits it derives are the documented defaults
    assert c.limits() == Limits()
    assert c.limits().advertised() == {
        "max_frame_size": 1048576,
        "max_text_len": 65536,
        "max_meta_size": 16384,
        "max_cmid_len": 64,
        "max_sync_page": 1000,
        "max_history_page": 200,
        "idle_timeout": 90.0,
        "auth_timeout": 10.0,
        "max_inflight_requests": 256,
    }


def test_precedence_flags_over_env_over_file(tmp_path) -> None:
    file = toml(
        tmp_path, 'port = 1000\nhost = "0.0.0.0"\nlog_level = "debug"\nidle_timeout = 120.0\n'
    )
    env = {
        "LIAOTIAN_PORT": "2000",
        "LIAOTIAN_LOG_LEVEL": "warning",
        "LIAOTIAN_SYNCHRONOUS": "normal",
        "UNRELATED": "x",
    }
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
    file = toml(tmp_path, "[server]\nport = 4321\nmax_connections = 7\n")
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


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("port", "abc"),
        ("port", True),
        ("port", [1]),
        ("idle_timeout", "soon"),
        ("max_batch", "12x"),
        ("login_window", None),
    ],
)
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
        Config.load(file=toml(tmp_path, "idle_timeout = true\nheartbeat_interval = 0.5\n"), env={})


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
    args = vars(
        parser.parse_args(
            [
                "--port",
                "9000",
                "--db-path",
                "/tmp/x.db",
                "--synchronous",
                "normal",
                "--idle-timeout",
                "120",
                "--max-connections",
                "50",
                "--host",
                "0.0.0.0",
            ]
        )
    )
    assert args.pop("config") is None
    assert args["port"] == 9000 and args["idle_timeout"] == 120.0
    assert args["log_level"] is None  # flags not given stay None: lower layers decide
    c = Config.load(env={"LIAOTIAN_PORT": "1", "LIAOTIAN_LOG_LEVEL": "debug"}, flags=args)
    assert (c.port, c.db_path, c.synchronous, c.idle_timeout, c.max_connections, c.host) == (
        9000,
        "/tmp/x.db",
        "normal",
        120.0,
        50,
        "0.0.0.0",
    )
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


# --- ranges (issue 11 item 6): every setting is checked, by one table

NUMERIC = [f.name for f in dataclasses.fields(Config) if f.type in ("int", "float")]


def test_every_rule_names_a_setting() -> None:
    assert set(RULES) <= {f.name for f in dataclasses.fields(Config)}


@pytest.mark.parametrize("name", NUMERIC)
def test_every_number_refuses_negative_and_non_finite_values(name: str) -> None:
    kind = {f.name: f.type for f in dataclasses.fields(Config)}[name]
    low = min(-1, (rule_for(name).lo or 0) - 1)  # below 0, and below a floor of -1 (off)
    bad: list[float] = [low] if kind == "int" else [float(low), float("nan"), float("inf")]
    for value in bad:
        with pytest.raises(SettingError, match=f"setting '{name}' must be") as exc:
            Config().with_overrides({name: value})
        assert exc.value.name == name


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"port": 99999}, "setting 'port' must be 0 to 65535 (0: any free port), got 99999"),
        ({"port": -1}, "setting 'port' must be 0 to 65535"),
        ({"max_text_len": -5}, "setting 'max_text_len' must be at least 1 (bytes), got -5"),
        ({"max_text_len": 0}, "setting 'max_text_len' must be at least 1"),
        (
            {"heartbeat_interval": 0.0},
            "setting 'heartbeat_interval' must be more than 0 and at most 3600",
        ),
        (
            {"log_level": "bogus"},
            "setting 'log_level' must be one of debug, info, warning, error, critical, got 'bogus'",
        ),
        ({"synchronous": "off"}, "setting 'synchronous' must be one of full, extra, normal"),
        ({"host": ""}, "setting 'host' must be non-empty text"),
        ({"max_connections": 0}, "setting 'max_connections' must be 1 to 10000000"),
        ({"argon2_parallelism": 0}, "setting 'argon2_parallelism' must be 1 to 64"),
        (
            {"login_failures_per_account": 0},
            "setting 'login_failures_per_account' must be at least 1",
        ),
    ],
)
def test_out_of_range_names_the_setting_the_range_and_the_flag(flags, message) -> None:
    """Regression: --port 99999 was accepted (and listened on a random port), and so was
    --max-text-len -5."""
    with pytest.raises(ValueError) as exc:
        Config.load(env={}, flags=flags)
    flag = "--" + next(iter(flags)).replace("_", "-")
    assert message in str(exc.value) and str(exc.value).endswith(f"(from {flag})")


def test_the_error_says_where_the_value_came_from(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"got 70000 \(from LIAOTIAN_PORT\)"):
        Config.load(env={"LIAOTIAN_PORT": "70000"})
    file = toml(tmp_path, "max_batch = 0\n")
    with pytest.raises(ValueError, match=rf"'max_batch' .* \(from config file {file}\)"):
        Config.load(file=file, env={})
    with pytest.raises(ValueError, match="LIAOTIAN_PORT: setting 'port' needs a int"):
        Config.load(env={"LIAOTIAN_PORT": "x"})


def test_range_bounds_are_inclusive() -> None:
    c = Config.load(
        env={},
        flags={
            "port": 65535,
            "max_text_len": 1,
            "shutdown_grace": 0.0,
            "retention_days": 0.0,
            "max_connections_per_address": 0,
        },
    )
    assert (c.port, c.max_text_len) == (65535, 1)
    assert Config(port=0).port == 0


def test_argon2_memory_must_cover_its_parallelism() -> None:
    with pytest.raises(ValueError, match="argon2_memory_kib must be at least 8 x"):
        Config(argon2_memory_kib=16, argon2_parallelism=4)
    Config(argon2_memory_kib=32, argon2_parallelism=4)


def test_a_setting_without_a_rule_gets_the_default_check(monkeypatch) -> None:
    """How a new setting is checked before it declares its own range: numbers must be
    finite and 0 or more; text is not checked."""
    monkeypatch.delitem(RULES, "max_connections_per_address")
    monkeypatch.delitem(RULES, "tls_cert")
    assert rule_for("max_connections_per_address") is config_module.DEFAULT_NUMBER
    with pytest.raises(
        SettingError, match="'max_connections_per_address' must be at least 0, got -3"
    ):
        Config(max_connections_per_address=-3)
    Config(max_connections_per_address=10**9)
    assert rule_for("tls_cert").describe("str") == "any text"


def test_layers_are_checked_together_not_one_by_one(tmp_path) -> None:
    """A file raising max_text_len past the default frame size, and a flag raising the
    frame size to match: each layer alone is inconsistent, the result is not."""
    file = toml(tmp_path, "max_text_len = 2000000\nsend_bytes_burst = 9000000.0\n")
    c = Config.load(file=file, env={}, flags={"max_frame_size": 4_000_000})
    assert (c.max_text_len, c.max_frame_size) == (2_000_000, 4_000_000)


def test_help_shows_every_range() -> None:
    text = " ".join(build_parser().format_help().split())
    assert "--port PORT 0 to 65535 (0: any free port) (default: 7420)" in text
    assert "--log-level LOG_LEVEL one of debug, info, warning, error, critical" in text
    assert "--max-text-len MAX_TEXT_LEN at least 1 (bytes) (default: 65536)" in text
    for f in dataclasses.fields(Config):
        assert rule_for(f.name).describe(str(f.type)) in " ".join(
            build_parser().format_help().split()
        )


# --- the config file (issue 11 item 5)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("server = 5\n", "'server' must be a table of settings ([server]), got 5"),
        ('port = 1\n[server]\nhost = "::"\n', "setting 'port' is outside the [server] table"),
        ("port = \n", "not valid TOML"),
    ],
)
def test_a_malformed_config_file_is_named(tmp_path, text, message) -> None:
    """Regression: `server = 5` raised AttributeError: 'int' object has no attribute
    'items'."""
    file = toml(tmp_path, text)
    with pytest.raises(ValueError) as exc:
        Config.load(file=file, env={})
    assert str(exc.value).startswith(f"config file {file}: ") and message in str(exc.value)


def test_a_missing_config_file_is_named(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"config file .*missing\.toml: No such file"):
        Config.load(file=str(tmp_path / "missing.toml"), env={})


def test_version_flag(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("liaotian-server ")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("login_failures_per_account", 0),
        ("login_failures_per_address", 0),
        ("login_free_failures", -1),
        ("login_delay", 0),
        ("login_max_delay", -1.0),
        ("register_rate", 0),
        ("register_burst", 0.5),
        ("argon2_max_concurrent", 0),
        ("register_max_concurrent", 0),
        ("register_max_concurrent", 5),
        ("token_idle_days", -1),
        ("max_devices_per_user", 0),
    ],
)
def test_auth_settings_are_range_checked(key: str, value: float) -> None:
    with pytest.raises(ValueError, match=key):
        Config().with_overrides({key: value})


@pytest.mark.parametrize("n", [0, 65])
def test_read_connections_out_of_range_is_refused(n: int) -> None:
    with pytest.raises(ValueError, match="read_connections"):
        Config(read_connections=n)


def test_db_url_selects_postgresql_from_flag_env_or_file(tmp_path) -> None:
    url = "postgresql://liaotian@db.example:5432/liaotian"
    assert Config().db_url == ""  # SQLite by default
    assert Config.load(flags={"db_url": url}).db_url == url
    assert Config.load(env={"LIAOTIAN_DB_URL": url}).db_url == url
    f = tmp_path / "c.toml"
    f.write_text(f'db_url = "{url}"\n')
    assert Config.load(file=str(f)).db_url == url
    assert build_parser().parse_args(["--db-url", url]).db_url == url
    with pytest.raises(ValueError, match="postgresql://"):
        Config.load(flags={"db_url": "mysql://x/y"})
