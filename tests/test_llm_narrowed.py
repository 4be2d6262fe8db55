"""Narrowed schemas: a static schema with name fields cut per request behaves as the
pydantic class with `Literal` fields it replaces."""

from __future__ import annotations

import itertools
import json
import random
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field, TypeAdapter, ValidationError, create_model

from concordia_like.agents.actions import decision_schema
from concordia_like.gm.resolution import resolution_schema
from concordia_like.llm.narrowed import Narrowed, union_of
from concordia_like.llm.scripted import example_for_schema


class Go(BaseModel):
    kind: Literal["go"]
    to: str


class Hand(BaseModel):
    kind: Literal["hand"]
    item: str
    to: str


class Rest(BaseModel):
    kind: Literal["rest"]


BASE = union_of(Go, Hand, Rest)


def literal_reference(places: tuple[str, ...], items: tuple[str, ...], people: tuple[str, ...]):
    """What the narrowing replaces: new classes with Literal fields."""
    members: list[Any] = [Rest]
    if places:
        members.append(create_model("Go", kind=(Literal["go"], ...), to=(Literal[places], ...)))
    if items and people:
        members.append(
            create_model(
                "Hand",
                kind=(Literal["hand"], ...),
                item=(Literal[items], ...),
                to=(Literal[people], ...),
            )
        )
    union = members[0]
    for m in members[1:]:
        union = union | m
    return TypeAdapter(union)


def narrowing(places, items, people) -> Narrowed:
    exclude = [m for m, open_ in (("Go", places), ("Hand", items and people)) if not open_]
    names = {("Go", "to"): places, ("Hand", "item"): items, ("Hand", "to"): people}
    return Narrowed.of(BASE, names, exclude)


def accepts(validate, value: dict[str, Any]) -> bool:
    try:
        validate(json.dumps(value))
    except ValidationError:
        return False
    return True


def test_it_accepts_exactly_what_the_literal_classes_accept():
    names = ["mill", "inn", "ale", "bread", "Ann", "Bob", "nobody"]
    candidates = [{"kind": "rest"}, {"kind": "fly", "to": "inn"}, {"kind": "go"}]
    candidates += [{"kind": "go", "to": n} for n in names]
    candidates += [{"kind": "hand", "item": i, "to": t} for i in names for t in names]
    options = itertools.product(
        [(), ("mill",), ("inn", "mill")], [(), ("ale", "bread")], [(), ("Ann",), ("Ann", "Bob")]
    )
    for places, items, people in options:
        narrowed = narrowing(places, items, people)
        reference = literal_reference(places, items, people)
        for value in candidates:
            assert accepts(narrowed.validate_json, value) == accepts(
                reference.validate_json, value
            ), (places, items, people, value)


def test_its_json_schema_lists_the_names_and_only_the_open_kinds():
    schema = narrowing(("mill", "inn"), (), ("Ann",)).json_schema
    assert set(schema["$defs"]) == {"Go", "Rest"}
    assert schema["$defs"]["Go"]["properties"]["to"]["enum"] == ["inn", "mill"]
    assert {s["$ref"] for s in schema["oneOf"]} == {"#/$defs/Go", "#/$defs/Rest"}
    assert set(schema["discriminator"]["mapping"]) == {"go", "rest"}
    # the base's own schema is left as it was: the next narrowing starts clean
    assert "enum" not in TypeAdapter(BASE).json_schema()["$defs"]["Go"]["properties"]["to"]
    assert "Hand" in narrowing((), ("ale",), ("Bob",)).json_schema["$defs"]


def test_errors_name_the_field_and_what_was_allowed():
    resolution = resolution_schema(("Ann", "Bob"), ("inn",), ("Ann", "Bob", "inn"), ("ale",), ())
    moves = [{"kind": "move", "agent": who, "to": "inn"} for who in ("Ann", "Cy")]
    bad = {"success": True, "outcome": "Ann walks off", "effects": moves}
    with pytest.raises(ValidationError) as info:
        resolution.validate_json(json.dumps(bad))
    error = info.value.errors()[0]
    assert error["loc"] == ("effects", 1, "agent") and error["type"] == "literal_error"
    assert "'Ann'" in error["msg"] and "'Bob'" in error["msg"]
    take = {"kind": "transfer", "item": "ale", "from": "inn", "to": "Bob", "quantity": 1}
    ok = resolution.validate_json(json.dumps({**bad, "effects": [take]}))
    assert ok.effects[0].from_ == "inn"
    attributes = {"kind": "set", "agent": "Ann", "attribute": "money", "delta": 3}
    with pytest.raises(ValidationError):  # the world has no attributes: no set effect
        resolution.validate_json(json.dumps({**bad, "effects": [attributes]}))


def test_outputs_made_from_its_json_schema_validate():
    """What a constrained decoder (here the scripted model) makes under the JSON schema
    passes validation, and names only what was allowed."""
    schemas = [
        decision_schema(("inn", "mill"), ("Ann", "Bob"), ("ale",), ("ale", "key"), ("Bob",)),
        decision_schema((), ("Ann",), (), (), ()),
        resolution_schema(("Ann",), ("inn", "mill"), ("Ann", "inn"), ("ale",), ("money",)),
    ]
    rng = random.Random(7)
    for schema in schemas:
        js = schema.json_schema
        for _ in range(100):
            value = schema.validate_json(json.dumps(example_for_schema(js, rng, js["$defs"])))
            for effect in getattr(value, "effects", [value]):
                for name in ("to", "agent", "item", "holder"):
                    if hasattr(effect, name) and effect.kind != "create":
                        assert getattr(effect, name) in {"inn", "mill", "Ann", "Bob", "ale", "key"}


def test_equal_narrowings_are_one_key_and_bad_ones_are_refused():
    a = Narrowed.of(BASE, {("Go", "to"): ["mill", "inn"], ("Hand", "to"): ["Ann"]}, ["Hand"])
    b = Narrowed.of(
        BASE, {("Hand", "to"): ("Ann",), ("Go", "to"): ("inn", "mill", "inn")}, ["Hand"]
    )
    assert a == b and hash(a) == hash(b) and a.json_schema == b.json_schema
    with pytest.raises(ValueError, match=r"Go\.where is not a field"):
        Narrowed.of(BASE, {("Go", "where"): ["inn"]})
    with pytest.raises(ValueError, match="allows nothing"):
        Narrowed.of(BASE, {("Go", "to"): []})


def test_a_field_with_a_default_and_a_nested_model_are_narrowed_too():
    class Inner(BaseModel):
        who: str

    class Outer(BaseModel):
        inner: list[Inner] = Field(default_factory=list)
        where: str = "home"

    narrowed = Narrowed.of(Outer, {("Inner", "who"): ["Ann"], ("Outer", "where"): ["home", "inn"]})
    assert narrowed.json_schema["$defs"]["Inner"]["properties"]["who"]["enum"] == ["Ann"]
    assert narrowed.json_schema["properties"]["where"]["enum"] == ["home", "inn"]
    assert narrowed.validate_json('{"inner": [{"who": "Ann"}]}').where == "home"
    with pytest.raises(ValidationError):
        narrowed.validate_json('{"inner": [{"who": "Bob"}]}')
    with pytest.raises(ValidationError):
        narrowed.validate_json('{"where": "mill"}')
