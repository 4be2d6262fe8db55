"""`concordia-like city SPEC --n N --seed S --out DIR`: a world file laid out from a
spec's plan, with its residents' cards, checked by the world loader as it is written."""

from __future__ import annotations

from typing import Annotated

import typer

from concordia_like.cli.common import (
    ApiKeyOpt,
    BaseUrlOpt,
    ModelOpt,
    ModelPathOpt,
    OptionalBackendOpt,
    console,
    user_errors,
)
from concordia_like.cli.population import BackstoriesOpt, NOpt, OutOpt, SeedOpt, SpecArg, drawn
from concordia_like.files import check_replaceable
from concordia_like.llm import BackendOptions


@user_errors
def city(
    spec: SpecArg,
    out: OutOpt,
    n: NOpt = 1000,
    seed: SeedOpt = 0,
    quiet: Annotated[bool, typer.Option(help="print one line, not the summary")] = False,
    backstories: BackstoriesOpt = False,
    backend: OptionalBackendOpt = None,
    base_url: BaseUrlOpt = None,
    model: ModelOpt = None,
    api_key: ApiKeyOpt = None,
    model_path: ModelPathOpt = None,
) -> None:
    """Lay out a city for N residents drawn from SPEC into DIR: world.yaml (districts,
    homes, workplaces, amenities, a walkable graph), cards.jsonl and population.txt."""
    from concordia_like.generate.write import OUTPUTS, WORLD, write_city

    check_replaceable(out, OUTPUTS)
    options = BackendOptions(backend, model, base_url, api_key, model_path)
    g = drawn(spec, n, seed, backstories, options)
    world = write_city(out, g)
    if not quiet:
        console.print(g.summary, highlight=False, markup=False)
    console.print(
        f"wrote {out / WORLD}: {len(world.state.places)} places, {len(world.personas)} "
        f"residents in {len(g.population.households)} homes, {len(g.city.districts)} districts",
        highlight=False,
    )
