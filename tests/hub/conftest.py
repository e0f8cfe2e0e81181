"""Fixtures shared by the hub bridge tests."""
from __future__ import annotations

import uuid

import pytest
from django.db import connection


@pytest.fixture
def database_check():
    """A CHECK constraint added for the test: PostgreSQL refuses a value the protocol allows, as it
    would for any rule the validation does not foresee. Dropped afterwards."""
    added = []

    def add(table: str, condition: str) -> None:
        name = f"test_refuse_{uuid.uuid4().hex[:8]}"
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} CHECK ({condition}) NOT VALID")
        added.append((table, name))

    yield add
    with connection.cursor() as cursor:
        for table, name in added:
            cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {name}")
