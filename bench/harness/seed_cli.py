"""`python -m harness.seed_cli sqlite|postgres <path or URL>`: seed a small database with the
purgecache found on the path, in a process of its own. `--compare` runs it with another
revision's src first on PYTHONPATH, so that each revision gets a database with its own schema
(a newer schema would be refused, or migrated under the other revision's feet)."""

from __future__ import annotations

import sys
from pathlib import Path

from harness import seed


def main(argv: list[str]) -> int:
    kind, where = argv
    rows = seed.small_rows(seed.now_ms())
    if kind == "sqlite":
        count = seed.seed_sqlite(Path(where), rows)
    else:
        from harness.databases import seed_postgres

        count = seed_postgres(where, rows)
    print(count)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
