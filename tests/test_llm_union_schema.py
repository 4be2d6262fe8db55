"""The composed JSON schema of discriminated unions equals pydantic's own."""

from __future__ import annotations

import itertools
from typing import Annotated, Literal

from pydantic import BaseModel, Field, TypeAdapter

from concordia_like.agents.actions import action_schema
from concordia_like.llm.types import _adapter, _union_json_schema


def test_action_unions_are_described_as_pydantic_would():
    options = itertools.product(
        [(), ("bakery",), ("bakery", "cafe")],
        [(), ("Ines Marlowe",), ("Ines Marlowe", "Tobias Marlowe")],
        [(), ("bread",), ("ale", "bread")],
        [(), ("bread",)],
    )
    for reachable, present, held, usable in options:
        schema = action_schema(reachable, present, held, usable, present)
        expected = TypeAdapter(schema).json_schema()
        # equal as data and in key order (a backend may build its grammar in that order)
        assert list(_adapter(schema)[1].items()) == list(expected.items())
        assert _adapter(schema)[1] == expected


def test_other_schemas_are_left_to_pydantic():
    class A(BaseModel):
        kind: Literal["a"]

    class Nested(BaseModel):
        kind: Literal["n"]
        inner: A

    assert _union_json_schema(A) is None
    assert _union_json_schema(list[A]) is None
    mixed = Annotated[A | Nested, Field(discriminator="kind")]
    assert _union_json_schema(mixed) is None  # a member with $defs of its own
    assert _adapter(mixed)[1] == TypeAdapter(mixed).json_schema()
