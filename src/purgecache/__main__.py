"""`python -m purgecache` is the `purgecache` command."""

from purgecache.cli import main

main()
