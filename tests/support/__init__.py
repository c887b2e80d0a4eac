"""Test-only helpers: the Hawk vectors, a vector-driven app factory and its live server."""
