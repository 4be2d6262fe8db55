"""`concordia-like population SPEC --n N --seed S --out DIR`: persona cards drawn from a
spec's distributions, with the realised distributions printed beside the spec's;
`--backstories` has a model write each card's backstory."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from concordia_like.cli.common import (
    ApiKeyOpt,
    BaseUrlOpt,
    ModelOpt,
    ModelPathOpt,
    OptionalBackendOpt,
    check_seed,
    console,
    user_errors,
)
from concordia_like.errors import ConfigError
from concordia_like.files import check_replaceable
from concordia_like.llm import BackendOptions

if TYPE_CHECKING:
    from concordia_like.generate.write import Generated

SpecArg = Annotated[Path, typer.Argument(help="a population spec (see worlds/city/city.yaml)")]
NOpt = Annotated[int, typer.Option("--n", help="how many residents")]
SeedOpt = Annotated[int, typer.Option(help="the same seed gives the same residents")]
OutOpt = Annotated[
    Path,
    typer.Option(help="folder to write (one it wrote before is replaced, any other refused)"),
]
BackstoriesOpt = Annotated[
    bool,
    typer.Option(
        "--backstories", help="have the model (--backend ...) write each card's backstory"
    ),
]


def check_n(n: int) -> None:
    if n < 1:
        raise ConfigError(f"--n must be at least 1, not {n}")


def drawn(spec: Path, n: int, seed: int, backstories: bool, options: BackendOptions) -> Generated:
    """The spec drawn from, with backstories written when asked: what both `population`
    and `city` write."""
    from concordia_like.generate.backstories import write_backstories
    from concordia_like.generate.write import generate
    from concordia_like.llm import open_model

    check_n(n)
    check_seed(seed)
    g = generate(spec, n, seed)
    if backstories:

        async def write() -> int:
            async with open_model(options) as lm:
                done = await write_backstories(lm, g.city.cards, seed, g.spec.city.name)
            g.city.cards = done.cards
            return done.failed

        failed = asyncio.run(write())
        console.print(
            f"backstories: {n - failed} written by {options.name}"
            + (f", {failed} left empty (the answer failed its schema)" if failed else ""),
            highlight=False,
        )
    return g


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
    backstories: BackstoriesOpt = False,
    backend: OptionalBackendOpt = None,
    base_url: BaseUrlOpt = None,
    model: ModelOpt = None,
    api_key: ApiKeyOpt = None,
    model_path: ModelPathOpt = None,
) -> None:
    """Draw N persona cards from SPEC into DIR (cards.jsonl and population.txt), homes
    and workplaces named as `concordia-like city` lays them out for the same spec, N
    and seed."""
    from concordia_like.generate.write import CARDS, OUTPUTS, PERSONAS, SUMMARY, write_population

    check_replaceable(out, OUTPUTS)
    options = BackendOptions(backend, model, base_url, api_key, model_path)
    g = drawn(spec, n, seed, backstories, options)
    write_population(out, g, yaml_cards)
    console.print(g.summary, highlight=False, markup=False)
    what = f"{PERSONAS}/*.yaml" if yaml_cards else CARDS
    console.print(f"wrote {n} cards to {out / what} and the summary to {out / SUMMARY}")
