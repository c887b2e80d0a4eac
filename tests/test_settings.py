"""One settings table: the click options, the environment variables, the `Settings` object and
the README's configuration table all come from `purgecache.settings.SETTINGS`.
"""

from __future__ import annotations

import dataclasses
import pickle
import subprocess
import sys
from pathlib import Path

import click
import pytest

from purgecache.cli import db_upgrade, expire, serve
from purgecache.settings import SETTINGS, Settings, markdown_table

from conftest import CLIENTS_TOML, free_port

README = Path(__file__).resolve().parents[1] / "README.md"

# Spelled out on purpose: renaming a flag or a variable breaks deployments.
SERVE_NAMES = [
    ("--host", "PURGECACHE_HOST"),
    ("--port", "PURGECACHE_PORT"),
    ("--root-url", "PURGECACHE_ROOT_URL"),
    ("--db", "PURGECACHE_DB"),
    ("--db-listen-url", "PURGECACHE_DB_LISTEN_URL"),
    ("--clients", "PURGECACHE_CLIENTS"),
    ("--data-dir", "PURGECACHE_DATA_DIR"),
    ("--retention", "PURGECACHE_RETENTION"),
    ("--history-retention", "PURGECACHE_HISTORY_RETENTION"),
    ("--worker-retention", "PURGECACHE_WORKER_RETENTION"),
    ("--activity-window", "PURGECACHE_ACTIVITY_WINDOW"),
    ("--until-applied-default/--no-until-applied-default", "PURGECACHE_UNTIL_APPLIED_DEFAULT"),
    ("--until-applied-max-age", "PURGECACHE_UNTIL_APPLIED_MAX_AGE"),
    ("--selector-confirm-threshold", "PURGECACHE_SELECTOR_CONFIRM_THRESHOLD"),
    ("--cache-time", "PURGECACHE_CACHE_TIME"),
    ("--stale-if-error", "PURGECACHE_STALE_IF_ERROR"),
    ("--sqlite-synchronous", "PURGECACHE_SQLITE_SYNCHRONOUS"),
    ("--workers", "PURGECACHE_WORKERS"),
    ("--access-log/--no-access-log", "PURGECACHE_ACCESS_LOG"),
    ("--interface", "PURGECACHE_INTERFACE"),
    ("--migrate/--no-migrate", "PURGECACHE_MIGRATE"),
    ("--auth-root-url", "PURGECACHE_AUTH_ROOT_URL"),
    ("--auth-timeout", "PURGECACHE_AUTH_TIMEOUT"),
    ("--body-timeout", "PURGECACHE_BODY_TIMEOUT"),
    ("--trust-proxy/--no-trust-proxy", "PURGECACHE_TRUST_PROXY"),
    ("--amqp-url", "PURGECACHE_AMQP_URL"),
    ("--amqp-exchange", "PURGECACHE_AMQP_EXCHANGE"),
    ("--webhook", "PURGECACHE_WEBHOOKS"),
    ("--webhook-secret-file", "PURGECACHE_WEBHOOK_SECRET_FILE"),
    ("--event-lease", "PURGECACHE_EVENT_LEASE"),
    ("--event-retry-max", "PURGECACHE_EVENT_RETRY_MAX"),
]
DATABASE_NAMES = [("--db", "PURGECACHE_DB"), ("--data-dir", "PURGECACHE_DATA_DIR")]
HISTORY_RETENTION = ("--history-retention", "PURGECACHE_HISTORY_RETENTION")
WORKER_RETENTION = ("--worker-retention", "PURGECACHE_WORKER_RETENTION")


def command_names(command: click.Command) -> list[tuple[str, str]]:
    """(flag as typed, environment variable) of each option of a click command."""
    names = []
    for param in command.params:
        if isinstance(param, click.Option) and param.envvar:
            flags = "/".join([*param.opts, *param.secondary_opts])
            names.append((flags, str(param.envvar)))
    return names


def test_settings_are_documented() -> None:
    """The README's configuration table is exactly the one the settings table produces."""
    assert markdown_table() in README.read_text("utf-8"), (
        "README.md's configuration table is out of date; replace it with:\n" + markdown_table()
    )


def test_flag_and_variable_names_are_unchanged() -> None:
    """`serve`, `expire` and `db upgrade` keep every flag and PURGECACHE_* name."""
    assert [(row.flag, row.envvar) for row in SETTINGS] == SERVE_NAMES
    assert command_names(serve) == SERVE_NAMES
    activity = ("--activity-window", "PURGECACHE_ACTIVITY_WINDOW")
    assert command_names(expire) == [
        *DATABASE_NAMES,
        HISTORY_RETENTION,
        WORKER_RETENTION,
        activity,
    ]
    assert command_names(db_upgrade) == DATABASE_NAMES


def test_only_internal_tuning_stays_off_the_table() -> None:
    """Every field of Settings is in the table except three internal tuning knobs."""
    internal = {f.name for f in dataclasses.fields(Settings)} - {row.name for row in SETTINGS}
    assert internal == {"cache_max_pools", "expire_interval_ms", "max_body_bytes"}


def test_table_defaults_are_the_objects_defaults() -> None:
    """The click defaults make the same object as `Settings()`."""
    context = serve.make_context("serve", [])
    assert Settings(**context.params) == Settings()


ENVIRONMENT = {
    "PURGECACHE_HOST": ("0.0.0.0", "host", "0.0.0.0"),
    "PURGECACHE_PORT": ("9000", "port", 9000),
    "PURGECACHE_ROOT_URL": ("https://tc.example.com", "root_url", "https://tc.example.com"),
    "PURGECACHE_DB": ("sqlite:////x.db", "db_url", "sqlite:////x.db"),
    "PURGECACHE_DB_LISTEN_URL": ("postgresql://db/pc", "db_listen_url", "postgresql://db/pc"),
    "PURGECACHE_CLIENTS": ("/etc/c.toml", "clients_file", "/etc/c.toml"),
    "PURGECACHE_DATA_DIR": ("/var/lib/pc", "data_dir", "/var/lib/pc"),
    "PURGECACHE_RETENTION": ("12h", "retention_ms", 12 * 3_600_000),
    "PURGECACHE_CACHE_TIME": ("2s", "cache_time_ms", 2000),
    "PURGECACHE_SQLITE_SYNCHRONOUS": ("full", "sqlite_synchronous", "FULL"),
    "PURGECACHE_WORKERS": ("3", "workers", 3),
    "PURGECACHE_ACCESS_LOG": ("false", "access_log", False),
    "PURGECACHE_INTERFACE": ("asgi", "interface", "asgi"),
    "PURGECACHE_MIGRATE": ("0", "migrate", False),
    "PURGECACHE_AUTH_ROOT_URL": (
        "https://tc.example.com",
        "auth_root_url",
        "https://tc.example.com",
    ),
    "PURGECACHE_TRUST_PROXY": ("true", "trust_proxy", True),
}


@pytest.mark.parametrize("variable", ENVIRONMENT)
def test_each_variable_sets_its_field(variable: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A PURGECACHE_* variable alone sets its field of Settings, converted."""
    text, name, expected = ENVIRONMENT[variable]
    for row in SETTINGS:
        monkeypatch.delenv(row.envvar, raising=False)
    monkeypatch.setenv(variable, text)
    settings = Settings(**serve.make_context("serve", []).params)
    assert getattr(settings, name) == expected
    assert dataclasses.replace(settings, **{name: getattr(Settings(), name)}) == Settings()


def test_a_flag_wins_over_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """--workers 2 beats PURGECACHE_WORKERS=5; --no-migrate beats PURGECACHE_MIGRATE=1."""
    monkeypatch.setenv("PURGECACHE_WORKERS", "5")
    monkeypatch.setenv("PURGECACHE_MIGRATE", "1")
    params = serve.make_context("serve", ["--workers", "2", "--no-migrate"]).params
    assert (params["workers"], params["migrate"]) == (2, False)


def test_the_repr_masks_a_database_password() -> None:
    """repr/str of Settings show `***` instead of the password of the database URL."""
    settings = Settings(db_url="postgresql://svc:s3cret-pw@db.example.com/pc")
    assert "s3cret-pw" not in repr(settings) and "s3cret-pw" not in str(settings)
    assert "postgresql://svc:***@db.example.com/pc" in repr(settings)


def test_settings_survive_pickling() -> None:
    """Settings reach a spawned worker by pickle (granian's loader argument), unchanged."""
    settings = Settings(port=1234, retention_ms=5, access_log=False).resolved()
    assert pickle.loads(pickle.dumps(settings)) == settings


WATCH_THE_ENVIRONMENT = """
import os, signal, sys, threading, time
import httpx
from purgecache.server import run
from purgecache.settings import Settings

port, data_dir, clients = int(sys.argv[1]), sys.argv[2], sys.argv[3]
before = set(os.environ)

def watch():
    served = False
    for _ in range(400):
        try:
            served = httpx.get(f"http://127.0.0.1:{port}/api/purge-cache/v1/ping").is_success
        except httpx.HTTPError:
            pass
        if served:
            break
        time.sleep(0.05)
    added = sorted(name for name in set(os.environ) - before if name.startswith("PURGECACHE"))
    print(served, added, flush=True)
    os.kill(os.getpid(), signal.SIGTERM)

threading.Thread(target=watch, daemon=True).start()
run(Settings(port=port, data_dir=data_dir, clients_file=clients))
"""


def test_workers_get_settings_without_the_environment(tmp_path: Path) -> None:
    """`run` serves without putting settings (or the clients snapshot) in the environment that
    its workers inherit."""
    clients = tmp_path / "clients.toml"
    clients.write_text(CLIENTS_TOML)
    args = [str(free_port()), str(tmp_path), str(clients)]
    result = subprocess.run(
        [sys.executable, "-c", WATCH_THE_ENVIRONMENT, *args],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True []", result.stderr


def test_the_broker_password_is_masked() -> None:
    """A password in --amqp-url is masked in the settings' repr and scrubbed from output."""
    settings = Settings(amqp_url="amqp://events:broker-pw-42@rabbit:5672/")
    assert "broker-pw-42" not in repr(settings)
    assert "broker-pw-42" in settings.secrets()
