"""Schemas narrowed per request: one static pydantic schema, its name fields cut to the
names that exist for this one call.

An agent's action schema lists the places it can reach and the people it can talk to,
and a Game Master's resolution schema the people, places and items at hand: decoding
under them can only name real things. Made as new pydantic classes (`Literal` fields),
each distinct situation cost a class, a TypeAdapter and a JSON schema, 3 to 6 ms, and a
crowd of 100 meets about 50 new situations a step, as people come and go. Here the
classes are written once (`base`), and a narrowing is plain data: its JSON schema is
the base's with `enum` lists put in and left-out members taken out (dictionary work,
tens of microseconds), and its validation is the base's followed by a check of the
narrowed fields, failing with the same `ValidationError` pydantic gives for a
`Literal`, so callers see no difference."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

#: (model name, field name, allowed values), sorted
Names = tuple[tuple[str, str, tuple[str, ...]], ...]


@lru_cache(maxsize=64)
def _base(base: Any) -> tuple[TypeAdapter[Any], dict[str, Any], dict[str, type[BaseModel]]]:
    adapter = TypeAdapter(base)
    return adapter, adapter.json_schema(), dict(_models(base))


def _models(tp: Any) -> Iterator[tuple[str, type[BaseModel]]]:
    """Every model class reachable from a type annotation, by name."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        yield tp.__name__, tp
        for f in tp.model_fields.values():
            yield from _models(f.annotation)
        return
    if get_origin(tp) is Annotated:
        yield from _models(get_args(tp)[0])
        return
    for arg in get_args(tp):
        yield from _models(arg)


@dataclass(frozen=True)
class Narrowed:
    """`base` (a model, or a union of models) with some string fields narrowed:
    `names` holds (model, field, allowed values); models named in `exclude` may not
    appear at all (a kind of action with nothing to act on)."""

    base: Any
    names: Names
    exclude: tuple[str, ...] = ()

    @classmethod
    def of(
        cls,
        base: Any,
        names: Mapping[tuple[str, str], Iterable[str]],
        exclude: Iterable[str] = (),
    ) -> Narrowed:
        """The narrowing in canonical form: equal narrowings are equal objects (and
        hash alike), so callers can memoise them and caches key them the same."""
        out = cls(
            base,
            tuple(sorted((m, f, tuple(sorted(set(v)))) for (m, f), v in names.items())),
            tuple(sorted(set(exclude))),
        )
        models = out.models
        for model, name, allowed in out.names:
            if model not in models or name not in models[model].model_fields:
                raise ValueError(f"{model}.{name} is not a field of the base schema")
            if not allowed and model not in out.exclude:
                raise ValueError(f"{model}.{name} allows nothing: exclude {model}")
        return out

    @property
    def models(self) -> dict[str, type[BaseModel]]:
        return _base(self.base)[2]

    @cached_property
    def _allowed(self) -> dict[tuple[str, str], frozenset[str]]:
        return {(m, f): frozenset(v) for m, f, v in self.names}

    # -- the JSON schema a backend decodes under ------------------------------------

    @cached_property
    def json_schema(self) -> dict[str, Any]:
        """The base's JSON schema with the narrowed properties replaced: new dictionaries
        along the paths that change, the rest shared with the base's (never mutated;
        backends only read a schema)."""
        schema = dict(_base(self.base)[1])
        defs = schema["$defs"] = dict(schema.get("$defs", {}))
        for model, name, allowed in self.names:
            if model in self.exclude:
                continue
            if model in defs:
                target = defs[model] = dict(defs[model])
            elif schema.get("title") == model:
                target = schema
            else:
                raise ValueError(f"{model} has no place in the JSON schema of the base")
            props = target["properties"] = dict(target["properties"])
            key = self.models[model].model_fields[name].alias or name
            prop = {k: v for k, v in props[key].items() if k != "const"}
            props[key] = {**prop, "type": "string", "enum": list(allowed)}
        for model in self.exclude:
            defs.pop(model, None)
        if not defs:
            del schema["$defs"]
        return _drop_refs(schema, {f"#/$defs/{m}" for m in self.exclude})

    # -- validation -----------------------------------------------------------------

    def validate_json(self, text: str | bytes) -> Any:
        return self._checked(_base(self.base)[0].validate_json(text))

    def validate_python(self, data: Any) -> Any:
        return self._checked(_base(self.base)[0].validate_python(data))

    def _checked(self, value: Any) -> Any:
        """`value` (valid against the base) if its narrowed fields hold allowed names."""
        errors = list(self._check(value, ()))
        if errors:
            raise ValidationError.from_exception_data("Narrowed", errors)
        return value

    def _check(self, value: Any, loc: tuple[Any, ...]) -> Iterator[Any]:
        if isinstance(value, list | tuple):
            for i, item in enumerate(value):
                yield from self._check(item, (*loc, i))
            return
        if not isinstance(value, BaseModel):
            return
        model = type(value).__name__
        if model in self.exclude:
            yield {
                "type": "value_error",
                "loc": loc,
                "input": value.model_dump(mode="json"),
                "ctx": {"error": f"{model} is not possible here"},
            }
            return
        for name, info in type(value).model_fields.items():
            field = getattr(value, name)
            allowed = self._allowed.get((model, name))
            where = (*loc, info.alias or name)
            if allowed is not None and field not in allowed:
                expected = ", ".join(repr(v) for v in sorted(allowed))
                yield {
                    "type": "literal_error",
                    "loc": where,
                    "input": field,
                    "ctx": {"expected": expected},
                }
            else:
                yield from self._check(field, where)


def _drop_refs(node: Any, refs: set[str]) -> Any:
    """`node` without the alternatives that point at `refs` (in oneOf/anyOf and in a
    discriminator's mapping)."""
    if not refs:
        return node
    if isinstance(node, list):
        return [_drop_refs(n, refs) for n in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, sub in node.items():
        if key in ("oneOf", "anyOf") and isinstance(sub, list):
            sub = [s for s in sub if not (isinstance(s, dict) and s.get("$ref") in refs)]
        elif key == "discriminator" and isinstance(sub, dict) and "mapping" in sub:
            mapping = {k: v for k, v in sub["mapping"].items() if v not in refs}
            sub = {**sub, "mapping": mapping}
        out[key] = _drop_refs(sub, refs)
    return out


def union_of(*models: type[BaseModel], discriminator: str = "kind") -> Any:
    """`Annotated[M1 | ... | Mn, Field(discriminator=...)]`, the base of a narrowing."""
    return Annotated[Union[models], Field(discriminator=discriminator)]  # noqa: UP007
