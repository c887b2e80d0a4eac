"""Request and trace ids: UUIDv4-shaped, unique, and never shared between forked workers."""

from __future__ import annotations

import os
import uuid

from purgecache.api.responses import new_id


def test_ids_are_uuid4_strings_and_unique() -> None:
    ids = [new_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    for text in ids[::997]:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


def test_forked_workers_do_not_repeat_the_parents_ids() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a granian worker forked from the supervisor
        os.write(write, "\n".join(new_id() for _ in range(100)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = set(pipe.read().split("\n"))
    os.waitpid(pid, 0)
    parent = {new_id() for _ in range(100)}
    assert len(child) == 100
    assert not child & parent
    assert {i[:24] for i in child}.isdisjoint({i[:24] for i in parent})
