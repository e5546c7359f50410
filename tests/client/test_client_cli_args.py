"""The CLI's argument parsing and configuration resolution (no server needed)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from liaotian.client import cli
from liaotian.client.cursor import FileStore, SessionState


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("LIAOTIAN_HOST", "LIAOTIAN_PORT", "LIAOTIAN_USER", "LIAOTIAN_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


def parse(*argv: str) -> argparse.Namespace:
    return cli.build_parser().parse_args(list(argv))


def test_defaults() -> None:
    args = parse("devices")
    assert args.command == "devices"
    assert args.host is None and args.port is None and args.state is None
    assert args.timeout == 10.0 and args.tls is False
    assert cli.server_address(args) == ("127.0.0.1", 7420)


def test_global_options_before_or_after_the_command() -> None:
    a = parse("--host", "example.org", "--port", "9000", "send", "bob", "hi")
    b = parse("send", "--host", "example.org", "--port", "9000", "bob", "hi")
    for args in (a, b):
        assert (args.host, args.port, args.to, args.text) == ("example.org", 9000, "bob", ["hi"])
    # A global option given only before the command is not reset by the subparser.
    c = parse("--state", "/tmp/x.json", "--timeout", "3", "listen")
    assert c.state == "/tmp/x.json" and c.timeout == 3.0


def test_environment_and_saved_address(monkeypatch: pytest.MonkeyPatch) -> None:
    saved = SessionState(extra={"host": "saved.example", "port": 7000})
    args = parse("devices")
    assert cli.server_address(args, saved) == ("saved.example", 7000)
    monkeypatch.setenv("LIAOTIAN_HOST", "env.example")
    monkeypatch.setenv("LIAOTIAN_PORT", "7500")
    assert cli.server_address(args, saved) == ("env.example", 7500)
    args = parse("--host", "flag.example", "--port", "7600", "devices")
    assert cli.server_address(args, saved) == ("flag.example", 7600)
    monkeypatch.setenv("LIAOTIAN_PORT", "not-a-port")
    with pytest.raises(cli.UsageError):
        cli.server_address(parse("devices"))


def test_send_joins_words() -> None:
    args = parse("send", "bob", "hello", "there", "bob")
    assert args.to == "bob" and " ".join(args.text) == "hello there bob"


def test_history_options() -> None:
    args = parse("history", "bob", "--before", "10", "--limit", "5")
    assert (args.with_user, args.before, args.after, args.limit) == ("bob", 10, None, 5)
    args = parse("history", "bob", "--after", "0")
    assert args.after == 0 and args.before is None


def test_login_and_register_options() -> None:
    args = parse("login", "alice", "--device", "laptop", "--password", "pw123456")
    assert (args.username, args.device, args.password) == ("alice", "laptop", "pw123456")
    args = parse("register", "alice")
    assert args.username == "alice" and args.password is None


@pytest.mark.parametrize(
    "argv",
    [
        [],  # a command is required
        ["frobnicate"],
        ["send", "bob"],  # no text
        ["history", "bob", "--before", "1", "--after", "2"],  # exclusive
        ["history", "bob", "--limit", "0"],
        ["history", "bob", "--before", "-3"],
        ["--port", "0", "devices"],
        ["--port", "70000", "devices"],
        ["--port", "http", "devices"],
        ["login"],  # USER missing
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.build_parser().parse_args(argv)
    assert exc.value.code == cli.EXIT_USAGE
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in ("register", "login", "send", "listen", "history", "devices", "logout"):
        assert command in out


def test_state_path_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config" / "liaotian"
    assert cli.config_dir() == config
    assert cli.state_path(parse("--state", "/x/s.json", "devices")) == Path("/x/s.json")
    assert cli.state_path(parse("login", "alice"), "alice") == config / "session-alice.json"
    assert cli.state_path(parse("-u", "bob", "devices")) == config / "session-bob.json"
    with pytest.raises(cli.UsageError, match="not logged in"):
        cli.state_path(parse("devices"))
    FileStore(config / "session-alice.json").save(SessionState(token="t"))
    assert cli.state_path(parse("devices")) == config / "session-alice.json"  # the only one
    FileStore(config / "session-bob.json").save(SessionState(token="t"))
    with pytest.raises(cli.UsageError, match="--user"):
        cli.state_path(parse("devices"))
    monkeypatch.setenv("LIAOTIAN_USER", "bob")
    assert cli.state_path(parse("devices")) == config / "session-bob.json"


def test_commands_without_a_session_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["send", "bob", "hi"]) == cli.EXIT_USAGE
    assert "login" in capsys.readouterr().err


def test_password_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    args = parse("login", "alice", "--password", "from-flag")
    assert cli.get_password(args, "?") == "from-flag"
    monkeypatch.setenv("LIAOTIAN_PASSWORD", "from-env")
    assert cli.get_password(parse("login", "alice"), "?") == "from-env"
    monkeypatch.delenv("LIAOTIAN_PASSWORD")
    monkeypatch.setattr(cli.sys.stdin, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(cli.getpass, "getpass", lambda prompt: "typed")
    assert cli.get_password(parse("login", "alice"), "?") == "typed"


def test_message_format() -> None:
    from liaotian.protocol import ChatMessage

    m = ChatMessage(id=1, conv=1, pos=3, sender="alice", to="bob", ts=0, cmid="c", text="hi")
    line = cli.fmt_message(m)
    assert line.startswith("[") and line.endswith("] alice -> bob: hi")


def test_the_last_login_is_the_current_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 11 item 8: with alice and bob saved, commands without --user use the current
    session (the last login, or `switch`); --user and LIAOTIAN_USER still pick one."""
    config = tmp_path / "config" / "liaotian"
    for user in ("alice", "bob"):
        FileStore(config / f"session-{user}.json").save(SessionState(username=user, token="t"))
    cli.set_current_user("bob")
    assert cli.state_path(parse("listen")) == config / "session-bob.json"
    assert cli.state_path(parse("--user", "alice", "listen")) == config / "session-alice.json"
    assert cli.main(["switch", "alice"]) == cli.EXIT_OK
    assert "alice is now the current session" in capsys.readouterr().out
    assert cli.state_path(parse("send", "bob", "hi")) == config / "session-alice.json"
    monkeypatch.setenv("LIAOTIAN_USER", "bob")
    assert cli.state_path(parse("listen")) == config / "session-bob.json"
    monkeypatch.delenv("LIAOTIAN_USER")
    assert cli.main(["switch", "carol"]) == cli.EXIT_USAGE  # no saved session for carol
    assert "liaotian login carol" in capsys.readouterr().err
    (config / "session-alice.json").unlink()  # the current session is gone: ask again
    assert cli.state_path(parse("listen")) == config / "session-bob.json"  # the only one


def test_refusals_name_the_subject_and_the_wait() -> None:
    """Issue 11 item 13."""
    from liaotian.protocol import ErrorCode, RequestError

    unknown = RequestError(ErrorCode.UNKNOWN_USER, "no such user")
    assert (
        cli.describe_refusal(unknown, parse("block", "mallory"))
        == "UNKNOWN_USER: no such user: mallory"
    )
    named = RequestError(ErrorCode.UNKNOWN_USER, "no such user: carol")
    assert (
        cli.describe_refusal(named, parse("group", "add", "5", "bob", "carol"))
        == "UNKNOWN_USER: no such user: carol"
    )
    assert (
        cli.describe_refusal(
            RequestError(ErrorCode.NOT_MEMBER, "not a member"), parse("send", "--group", "7", "hi")
        )
        == "NOT_MEMBER: not a member: group #7"
    )
    throttled = RequestError(ErrorCode.THROTTLED, "too many failed logins", retry_after=41.2)
    assert (
        cli.describe_refusal(throttled, parse("login", "alice"))
        == "THROTTLED: too many failed logins: alice (try again in 42 s)"
    )
    limited = RequestError(ErrorCode.RATE_LIMITED, "slow down", retry_after=0.3)
    assert cli.describe_refusal(limited, parse("read", "3", "9")).endswith("(try again in 1 s)")
