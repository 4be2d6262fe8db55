"""The schema a Game Master's model answers a free-form action under.

Built per action from the relevant slice of the world, like the agents' action schema:
every name in an effect is an enum of the real names involved, so the model cannot
invent a holder or a place. The names are the actor's authority, not everyone's: one
resident's action moves and changes only that resident (`move.agent`, `set.agent`: the
actor alone), takes, destroys or makes things only from the actor's holdings and the
place's (`transfer.from`, `destroy.holder`, `create.holder`: the actor and the place),
makes only what a make rule of the world lets it make there (`create.item`: with no such
rule, no `create` is offered at all), and may hand things to anyone present
(`transfer.to`) and `pay` someone present or a keeper of the place (a conserved
attribute from the actor to them: how a purchase is paid for). What it can still do is
propose effects the rules forbid (take the shop's bread without paying, walk to a closed
shop, mint money, slip another resident's name past a lax backend): the world's
validator, given the actor, refuses those, whatever the schema let through.

A resident holding the world's device may also be resolved as using its apps: `message`
one of its `contacts`, `post` on the feed, `bank` money to a contact, `read` an app
(so "I text Margo that the bridge is closing" becomes the typed message); each becomes
the app effect of `world.app_effects`, checked like any other."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from concordia_like.llm.narrowed import Narrowed, union_of

OUTCOME_MAX = 160
#: the longest message or post a resolution writes
WRITTEN_MAX = 200
MAX_EFFECTS = 3


class _Out(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


class MoveOut(_Out):
    kind: Literal["move"]
    agent: str
    to: str


class TransferOut(_Out):
    kind: Literal["transfer"]
    item: str
    from_: str = Field(alias="from")
    to: str
    quantity: int = Field(1, ge=1, le=10)


class DestroyOut(_Out):
    kind: Literal["destroy"]
    item: str
    holder: str
    quantity: int = Field(1, ge=1, le=10)


class SetOut(_Out):
    kind: Literal["set"]
    agent: str
    attribute: str
    delta: int = Field(ge=-50, le=50)


class PayOut(_Out):
    """`amount` of a conserved attribute (money) from the actor to `to`: two sets."""

    kind: Literal["pay"]
    to: str
    attribute: str
    amount: int = Field(ge=1, le=100)


class CreateOut(_Out):
    kind: Literal["create"]
    item: str = Field(min_length=1, max_length=30)
    holder: str
    quantity: int = Field(1, ge=1, le=10)


class MessageOut(_Out):
    """A message from the actor to `to` (`world.app_effects.MessageEffect`)."""

    kind: Literal["message"]
    to: str
    text: str = Field(min_length=1, max_length=WRITTEN_MAX)


class PostOut(_Out):
    kind: Literal["post"]
    text: str = Field(min_length=1, max_length=WRITTEN_MAX)


class BankOut(_Out):
    """`amount` of the bank's currency from the actor to `to`, through the bank."""

    kind: Literal["bank"]
    to: str
    amount: int = Field(ge=1, le=100)


class ReadOut(_Out):
    kind: Literal["read"]
    what: str


EFFECT = union_of(
    MoveOut,
    TransferOut,
    DestroyOut,
    SetOut,
    PayOut,
    CreateOut,
    MessageOut,
    PostOut,
    BankOut,
    ReadOut,
)
#: the app effects' kinds (the actor's own: `agent` is added by `effects_as_dicts`)
APP_OUTS = frozenset({"message", "post", "bank", "read"})


class Resolution(_Out):
    success: bool
    outcome: str = Field(max_length=OUTCOME_MAX, description="what happens, one sentence")
    effects: list[EFFECT] = Field(default_factory=list, max_length=MAX_EFFECTS)  # type: ignore[valid-type]


@lru_cache(maxsize=128)  # bounded as agents.actions.decision_schema is
def resolution_schema(
    agents: tuple[str, ...],
    places: tuple[str, ...],
    holders: tuple[str, ...],
    items: tuple[str, ...],
    attributes: tuple[str, ...],
    *,
    sources: tuple[str, ...] | None = None,
    payees: tuple[str, ...] = (),
    currencies: tuple[str, ...] = (),
    contacts: tuple[str, ...] = (),
    apps: tuple[str, ...] = (),
    makeable: tuple[str, ...] = (),
) -> Narrowed:
    """{success, outcome, effects[]} with effects restricted to the names given; a kind
    of effect with nothing to name is left out.

    `agents` may move and have `attributes` set; things go to `holders` and come from
    (or are made or destroyed at) `sources` (default: `holders`); `pay` goes to `payees`
    in one of `currencies`. The Game Master gives `agents=(actor,)`, `sources=(actor,
    place)`: see the module's text. `apps` (the world's apps, for an actor holding the
    device) opens the app kinds; a message or a payment goes to one of `contacts`.
    `create` makes one of `makeable` (what the world's make rules let the actor make
    where it is); with none, the kind is not offered: the validator would refuse it."""
    sources = holders if sources is None else sources
    readable = tuple(a for a in ("feed", "messages") if a in apps)
    exclude = [
        kind
        for kind, open_ in (
            ("MoveOut", agents and places),
            ("TransferOut", items and sources and holders),
            ("DestroyOut", items and sources),
            ("SetOut", agents and attributes),
            ("PayOut", payees and currencies),
            ("CreateOut", sources and makeable),
            ("MessageOut", contacts and "messages" in apps),
            ("PostOut", "feed" in apps),
            ("BankOut", contacts and "bank" in apps),
            ("ReadOut", readable),
        )
        if not open_
    ]
    names = {
        ("MoveOut", "agent"): agents,
        ("MoveOut", "to"): places,
        ("TransferOut", "item"): items,
        ("TransferOut", "from_"): sources,
        ("TransferOut", "to"): holders,
        ("DestroyOut", "item"): items,
        ("DestroyOut", "holder"): sources,
        ("SetOut", "agent"): agents,
        ("SetOut", "attribute"): attributes,
        ("PayOut", "to"): payees,
        ("PayOut", "attribute"): currencies,
        ("CreateOut", "item"): makeable,
        ("CreateOut", "holder"): sources,
        ("MessageOut", "to"): contacts if "messages" in apps else (),
        ("BankOut", "to"): contacts if "bank" in apps else (),
        ("ReadOut", "what"): readable,
    }
    return Narrowed.of(Resolution, names, exclude)


def effects_as_dicts(resolution: BaseModel, actor: str) -> list[dict[str, Any]]:
    """The resolution's effects in the world's effect language (`from`, not `from_`); a
    `pay` is two sets, the actor's decrease and the payee's increase; an app effect is
    the actor's own (`agent`)."""
    out: list[dict[str, Any]] = []
    for e in getattr(resolution, "effects", []):
        if isinstance(e, PayOut):
            out.append(
                {"kind": "set", "agent": actor, "attribute": e.attribute, "delta": -e.amount}
            )
            out.append({"kind": "set", "agent": e.to, "attribute": e.attribute, "delta": e.amount})
        elif e.kind in APP_OUTS:
            out.append({**e.model_dump(), "agent": actor})
        else:
            out.append(e.model_dump(by_alias=True))
    return out
