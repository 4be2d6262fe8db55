"""`concordia-like city SPEC --n N --seed S --out DIR`: a world file laid out from a
spec's plan, with its residents' cards, checked by the world loader as it is written."""

from __future__ import annotations

from typing import Annotated

import typer

from concordia_like.cli.common import check_seed, console, user_errors
from concordia_like.cli.population import NOpt, OutOpt, SeedOpt, SpecArg, check_n


@user_errors
def city(
    spec: SpecArg,
    out: OutOpt,
    n: NOpt = 1000,
    seed: SeedOpt = 0,
    quiet: Annotated[bool, typer.Option(help="print one line, not the summary")] = False,
) -> None:
    """Lay out a city for N residents drawn from SPEC into DIR: world.yaml (districts,
    homes, workplaces, amenities, a walkable graph), cards.jsonl and population.txt."""
    from concordia_like.generate.write import WORLD, generate, write_city

    check_n(n)
    check_seed(seed)
    g = generate(spec, n, seed)
    world = write_city(out, g)
    if not quiet:
        console.print(g.summary, highlight=False, markup=False)
    console.print(
        f"wrote {out / WORLD}: {len(world.state.places)} places, {len(world.personas)} "
        f"residents in {len(g.population.households)} homes, {len(g.city.districts)} districts",
        highlight=False,
    )
