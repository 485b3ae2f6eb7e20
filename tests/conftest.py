"""Shared fixtures live in tests/fixtures/, one module per owner, registered here."""

pytest_plugins = ("tests.fixtures.data", "tests.fixtures.model")
