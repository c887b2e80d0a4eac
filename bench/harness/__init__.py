"""The purgecache benchmark harness: the service beside nginx, driven by wrk (issue 8).

Run it through `bench/run`; `bench/README.md` says what it measures and how.
"""
