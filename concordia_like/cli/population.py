"""`concordia-like population SPEC --n N --seed S --out DIR`: persona cards drawn from a
spec's distributions, with the realised distributions printed beside the spec's."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from concordia_like.cli.common import check_seed, console, user_errors
from concordia_like.errors import ConfigError

SpecArg = Annotated[Path, typer.Argument(help="a population spec (see worlds/city/city.yaml)")]
NOpt = Annotated[int, typer.Option("--n", help="how many residents")]
SeedOpt = Annotated[int, typer.Option(help="the same seed gives the same residents")]
OutOpt = Annotated[Path, typer.Option(help="folder to write (replaced if it exists)")]


def check_n(n: int) -> None:
    if n < 1:
        raise ConfigError(f"--n must be at least 1, not {n}")


@user_errors
def population(
    spec: SpecArg,
    out: OutOpt,
    n: NOpt = 1000,
    seed: SeedOpt = 0,
    yaml_cards: Annotated[
        bool,
        typer.Option("--yaml", help="one personas/<name>.yaml per card instead of cards.jsonl"),
    ] = False,
) -> None:
    """Draw N persona cards from SPEC into DIR (cards.jsonl and population.txt), homes
    and workplaces named as `concordia-like city` lays them out for the same spec, N
    and seed."""
    from concordia_like.generate.write import CARDS, PERSONAS, SUMMARY, generate, write_population

    check_n(n)
    check_seed(seed)
    g = generate(spec, n, seed)
    write_population(out, g, yaml_cards)
    console.print(g.summary, highlight=False, markup=False)
    what = f"{PERSONAS}/*.yaml" if yaml_cards else CARDS
    console.print(f"wrote {n} cards to {out / what} and the summary to {out / SUMMARY}")
