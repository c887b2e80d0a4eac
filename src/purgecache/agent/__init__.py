"""The worker-side agent: a cache registry on the worker's disk and the purge loop."""
