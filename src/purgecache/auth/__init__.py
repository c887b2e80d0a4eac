"""Taskcluster authentication: Hawk, scopes, clients."""
