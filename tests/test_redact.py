"""Database passwords are masked for display and scrubbed from any other text."""

from __future__ import annotations

import pytest

from purgecache.redact import dsn_secrets, redact_dsn, scrub

CASES = [
    # (connection string, as displayed, passwords found)
    ("postgresql://svc:s3cret-pw@127.0.0.1/x", "postgresql://svc:***@127.0.0.1/x", {"s3cret-pw"}),
    ("postgres://svc:p%40w@db:5432/x", "postgres://svc:***@db:5432/x", {"p%40w", "p@w"}),
    ("postgresql://svc@db/x?password=qq&sslmode=require",
     "postgresql://svc@db/x?password=***&sslmode=require", {"qq"}),
    ("postgresql://db/x?sslmode=require&password=zz", "postgresql://db/x?sslmode=require&password=***",
     {"zz"}),
    ("host=db password=kv-pw dbname=x", "host=db password=*** dbname=x", {"kv-pw"}),
    ("host=db password = 'a b\\'c' dbname=x", "host=db password = *** dbname=x",
     {"'a b\\'c'", "a b'c"}),
    ("postgresql://svc@db/x", "postgresql://svc@db/x", set()),
    ("postgresql://db:5432/x", "postgresql://db:5432/x", set()),
    ("sqlite:////var/lib/pc.db", "sqlite:////var/lib/pc.db", set()),
    ("sqlite:///rel:ative@x.db", "sqlite:///rel:ative@x.db", set()),
]  # fmt: skip


@pytest.mark.parametrize(("dsn", "shown", "passwords"), CASES)
def test_passwords_are_masked_and_named(dsn: str, shown: str, passwords: set[str]) -> None:
    """Each way of writing a password is masked, and the password is known for scrubbing."""
    assert redact_dsn(dsn) == shown
    assert passwords <= set(dsn_secrets(dsn))
    for secret in dsn_secrets(dsn):
        assert secret not in redact_dsn(dsn).replace("***", "")


def test_scrub_removes_each_spelling_of_the_password() -> None:
    """A driver's message quoting the password, raw or JSON-escaped, loses it."""
    secrets = dsn_secrets("postgresql://svc:pa%22ss@db/x")
    text = 'failed for "pa"ss" and {"dsn":"pa\\"ss"} and pa%22ss'
    assert scrub(text, secrets) == 'failed for "***" and {"dsn":"***"} and ***'
