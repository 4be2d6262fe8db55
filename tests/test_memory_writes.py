"""Memory writes held for a step's transaction: nothing reaches the store before they
are written, they are handed over once, and they are written in the order made."""

from __future__ import annotations

from datetime import datetime

from concordia_like.memory.records import NewMemory, RetrievalQuery
from concordia_like.memory.writes import MemoryWrites

NOW = datetime(2026, 4, 14, 8, 0)


def test_held_writes_reach_the_store_only_when_written(memory_store) -> None:
    first = memory_store.add(NewMemory("Ann", "the bakery smells of bread", created=NOW))
    later = datetime(2026, 4, 14, 9, 0)
    found = memory_store.retrieve_many([RetrievalQuery("Ann", "bread", later, 1)], touch=False)
    held = MemoryWrites()
    held.touch([RetrievalQuery("Ann", "bread", later, 1)], found)
    held.add([NewMemory("Ann", "Ben said the bridge is cracking", created=later)])
    held.add([NewMemory("Ann", "plans to warn the mayor", "plan", later, 4)])
    held.mark({"Ann": first.id})
    assert memory_store.count("Ann") == 1
    assert memory_store.get([first.id])[0].last_retrieved == NOW

    taken = held.take()
    assert held.memories == [] and held.retrieved == [] and held.marks == {}
    records = taken.write(memory_store, later)

    assert [r.text for r in records] == [
        "Ben said the bridge is cracking",
        "plans to warn the mayor",
    ]
    assert memory_store.count("Ann") == 3
    assert memory_store.get([first.id])[0].last_retrieved == later
    assert memory_store.reflection_marks(["Ann"]) == {"Ann": first.id}


def test_extend_keeps_the_order_of_the_makers() -> None:
    step, upkeep = MemoryWrites(), MemoryWrites()
    step.add([NewMemory("Ann", "observation")])
    upkeep.add([NewMemory("Ann", "plan note", "plan")])
    upkeep.add([])  # nothing made: no empty batch
    step.extend(upkeep)
    assert [m.text for m in step.memories] == ["observation", "plan note"]
    assert len(step.batches) == 2
