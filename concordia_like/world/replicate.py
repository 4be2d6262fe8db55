"""A world with more residents than its file: clones of its residents, for benchmarks
and load tests ("Ines Marlowe 2" has Ines Marlowe's card, home, start and attributes).

    from concordia_like.world import load_world, replicate_residents
    big = replicate_residents(load_world("worlds/town.yaml"), 100)

Residents are cloned in turn, in the world's order, until there are `n`: the originals
keep their names, clones get " 2", " 3"... A clone holds the same keys as its original
(it may open the bakery early), and every place's capacity is multiplied by the number
of copies, so a crowd of clones is refused entry no sooner than the originals would be.
Items are not cloned (the letter for Tobias stays one letter), and a clone's card still
names the originals in its relationships: clones know the town's people, not each other.
The world's spec is left as the file has it."""

from __future__ import annotations

import math
from dataclasses import replace

from concordia_like.world.loader import World
from concordia_like.world.state import Clock, Resident, WorldState


def clone_name(name: str, copy: int) -> str:
    """The name of the `copy`-th copy of a resident (copy 1 is the resident itself)."""
    return name if copy == 1 else f"{name} {copy}"


def replicate_residents(world: World, n: int) -> World:
    """A new World with `n` residents built from `world`'s (which is left unchanged),
    in its initial state; `n` below the number of residents keeps the first `n`."""
    originals = list(world.personas)
    if not originals:
        raise ValueError(f"world {world.name!r} has no residents to replicate")
    if n < 1:
        raise ValueError(f"n must be at least 1, not {n}")
    base = world.new_state()
    copies = math.ceil(n / len(originals))
    personas = {}
    agents = {}
    clones_of: dict[str, list[str]] = {}
    for i in range(n):
        original = originals[i % len(originals)]
        name = clone_name(original, i // len(originals) + 1)
        card = world.personas[original]
        personas[name] = card if name == original else card.model_copy(update={"name": name})
        a = base.agents[original]
        agents[name] = Resident(name, a.location, a.home, dict(a.attributes))
        clones_of.setdefault(original, []).append(name)
    places = {
        pid: replace(
            p,
            capacity=None if p.capacity is None else p.capacity * copies,
            keyholders=frozenset(
                clone
                for k in p.keyholders
                for clone in clones_of.get(k, [] if k in world.personas else [k])
            ),
        )
        for pid, p in base.places.items()
    }
    dropped = set(originals) - set(agents)
    items = {iid: item for iid, item in base.items.items() if item.holder not in dropped}
    state = WorldState(
        name=base.name,
        clock=Clock(base.clock.now, base.clock.step, base.clock.step_index),
        places=places,
        attributes=base.attributes,
        agents=agents,
        items=items,
        events=base.events,
        max_stack=base.max_stack,
        apps=base.apps,  # as the world file declares them (the phones stay with their holders)
    )
    return World(
        path=world.path,
        spec=world.spec,
        personas=personas,
        state=state,
        warnings=list(world.warnings),
        _initial=state.to_dict(),
        built={**world.built, "replicate_residents": n},
    )


def rebuild(world: World, built: dict[str, object]) -> World:
    """`world` built again as a run recorded it (see `World.built`)."""
    n = built.get("replicate_residents")
    return replicate_residents(world, int(n)) if isinstance(n, int | float | str) else world
