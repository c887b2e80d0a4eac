"""The HTTP API: application, routing, errors and reference documents."""
