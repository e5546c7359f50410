"""Packaging (issue 16, item 8) and the operator side's pure parts: the sample configuration
is what the generator writes from the settings, lists every setting and loads with the
server's own loader; the Dockerfile and the systemd unit have what README promises; the
histograms behind the metrics and the stats line."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path

import pytest
from liaotian.server.config import RULES, Config
from liaotian.server.ops.counters import Histogram, WriterMeter
from liaotian.server.ops.sample_config import PACKAGED, meanings_from_readme, render

ROOT = Path(__file__).resolve().parents[2]
PACKAGING = ROOT / "packaging"
SETTINGS = [f.name for f in dataclasses.fields(Config)]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("LIAOTIAN_"):
            monkeypatch.delenv(key)


def test_the_sample_configuration_is_generated_from_the_settings() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    meanings = meanings_from_readme(readme)
    assert set(meanings) == set(SETTINGS), "README's table and Config differ"
    expected = render(meanings, PACKAGED)
    assert (PACKAGING / "liaotian.toml").read_text(encoding="utf-8") == expected, (
        "regenerate: python -m liaotian.server.ops.sample_config README.md > "
        "packaging/liaotian.toml"
    )


def test_the_sample_configuration_lists_and_loads_every_setting() -> None:
    path = PACKAGING / "liaotian.toml"
    text = path.read_text(encoding="utf-8")
    listed = re.findall(r"^#?([a-z0-9_]+) = ", text, re.MULTILINE)
    assert listed == SETTINGS  # each once, in the order of --help
    loaded = Config.load(file=str(path), env={})
    assert loaded == Config().with_overrides(PACKAGED)
    # every commented line, uncommented, is the default: the file documents them right
    everything = re.sub(r"^#([a-z0-9_]+ = )", r"\1", text, flags=re.MULTILINE)
    data = tomllib.loads(everything)["server"]
    assert set(data) == set(SETTINGS)
    assert (
        Config.load(
            env={}, flags={k: v for k, v in data.items() if k not in PACKAGED}
        ).with_overrides({k: getattr(Config(), k) for k in PACKAGED})
        == Config()
    )


def test_the_new_settings() -> None:
    c = Config()
    assert (c.log_format, c.metrics_port, c.metrics_host, c.admin_socket) == (
        "text",
        -1,
        "127.0.0.1",
        "",
    )
    assert {"log_format", "metrics_port", "metrics_host", "admin_socket"} <= set(RULES)
    assert Config.load(env={"LIAOTIAN_LOG_FORMAT": "JSON"}).log_format == "JSON"
    with pytest.raises(ValueError, match="'log_format' must be one of text, json"):
        Config.load(env={}, flags={"log_format": "xml"})
    with pytest.raises(ValueError, match="'metrics_port' must be -1 to 65535"):
        Config.load(env={}, flags={"metrics_port": -2})


def test_the_dockerfile() -> None:
    text = (PACKAGING / "Dockerfile").read_text(encoding="utf-8")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    froms = [ln for ln in lines if ln.startswith("FROM ")]
    # small: two stages on one base, the slim Python image unless BASE says otherwise
    assert froms == ["FROM ${BASE} AS build", "FROM ${BASE}"]
    assert "ARG BASE=python:3.11-slim" in lines
    users = [ln for ln in lines if ln.startswith("USER ")]
    assert users == ["USER liaotian"]
    assert 'VOLUME ["/data"]' in lines
    assert "LIAOTIAN_DB_PATH=/data/liaotian.db \\" in lines
    health = text[text.index("HEALTHCHECK") :]
    assert '"liaotian-server", "health"' in health.split("\n\n")[0]
    assert 'ENTRYPOINT ["liaotian-server"]' in lines
    for copied in re.findall(r"^COPY (?!--)(\S+)", text, re.MULTILINE):
        if copied != "pyproject.toml":
            assert (ROOT / copied).exists(), copied
    # every folder pyproject installs is copied (a missing one fails `pip install .`)
    folders = set(package_dirs().values())
    assert folders >= {"protocol", "server", "client", "conformance"}
    ignore = (PACKAGING / "Dockerfile.dockerignore").read_text(encoding="utf-8")
    for folder in folders:
        assert f"COPY {folder} ./{folder}" in lines
        assert f"!{folder}/" in ignore


def package_dirs() -> dict[str, str]:
    with open(ROOT / "pyproject.toml", "rb") as f:
        setuptools = tomllib.load(f)["tool"]["setuptools"]
    dirs: dict[str, str] = setuptools["package-dir"]
    return dirs


def test_every_package_folder_is_installed() -> None:
    """A non-editable install (the quickstart's `pip install .`, the image) ships exactly
    the packages pyproject lists: every folder with an __init__.py under a package-dir
    must be one of them."""
    with open(ROOT / "pyproject.toml", "rb") as f:
        listed = set(tomllib.load(f)["tool"]["setuptools"]["packages"])
    found = set()
    for name, folder in package_dirs().items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            found.add(".".join((name, *rel.parts)))
    assert found == listed


def test_the_systemd_unit() -> None:
    text = (PACKAGING / "liaotian.service").read_text(encoding="utf-8")
    keys: dict[str, str] = {}
    section = ""
    for line in text.splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            keys[f"{section}.{key}"] = value
    assert {"Unit", "Service", "Install"} == {k.split(".")[0] for k in keys}
    service = {k.split(".", 1)[1]: v for k, v in keys.items() if k.startswith("Service.")}
    assert (
        service["ExecStart"]
        == "/opt/liaotian/bin/liaotian-server --config /etc/liaotian/liaotian.toml"
    )
    assert service["User"] == "liaotian" and service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict" and service["PrivateTmp"] == "yes"
    assert service["ReadWritePaths"] == "/var/lib/liaotian"
    assert service["StateDirectory"] == "liaotian" and service["StateDirectoryMode"] == "0700"
    assert service["CapabilityBoundingSet"] == "" and service["KillSignal"] == "SIGTERM"
    # the database the sample configuration names lives in the writable directory
    assert PACKAGED["db_path"].startswith(service["ReadWritePaths"] + "/")


def test_readme_shows_how_to_run_each() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Operating the server") : readme.index("## Layout")]
    for text in (
        "docker build -f packaging/Dockerfile",
        "packaging/liaotian.service",
        "packaging/liaotian.toml",
        "liaotian-server health",
        "liaotian-server admin",
        "--metrics-port",
        "--log-format json",
        "packaging/grafana-dashboard.json",
    ):
        assert text in section, text


def test_histogram_buckets_and_quantiles() -> None:
    h = Histogram((1, 2, 5))
    for v in (0.5, 1, 1.5, 2, 3, 7):
        h.observe(v)
    assert h.counts == [2, 2, 1, 1] and h.sum == 15.0 and h.count == 6
    assert h.cumulative() == [(1.0, 2), (2.0, 4), (5.0, 5), (float("inf"), 6)]
    assert h.quantile(0.5) == pytest.approx(1.5)  # rank 3: half-way through (1, 2]
    assert h.quantile(1.0) == 5.0  # beyond the last bound: the last bound
    before = list(h.counts)
    assert h.quantile(0.99, since=before) is None  # nothing since
    h.observe(4)
    assert 2 < (h.quantile(0.99, since=before) or 0) <= 5


def test_the_writer_meter_keeps_its_histograms_across_resets() -> None:
    m = WriterMeter()
    m.record(3, 2, plan=0.0, write=0.001, commit=0.002, dispatch=0.0)
    m.reset()
    assert m.batches == 0  # WriterStats' interval sums start over
    assert m.batch_sizes.count == 1 and m.commit_seconds.count == 1
    assert m.commit_seconds.sum == pytest.approx(0.003)
