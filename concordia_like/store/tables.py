"""Imports every table module so that `Base.metadata` knows them all.

Each concept keeps its tables in its own module (memory_tables, run_tables, ...); add
the new module's import here."""

import concordia_like.store.memory_tables  # noqa: F401
from concordia_like.store import leases, run_tables  # noqa: F401
