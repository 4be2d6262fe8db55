"""The world: typed state, the effect language, its validator, and the file loaders.

from concordia_like.world import load_world, apply_effects, MoveEffect
world = load_world("worlds/town.yaml")
result = apply_effects(world.state, [MoveEffect(agent="Ines Marlowe", to="bakery")])
"""

from concordia_like.world.effects import (
    EFFECT_ADAPTER,
    EFFECT_LIST_ADAPTER,
    CreateEffect,
    DestroyEffect,
    Effect,
    EffectBase,
    MoveEffect,
    SetEffect,
    TransferEffect,
    effect_to_dict,
    parse_effect,
)
from concordia_like.world.hours import OpeningHours
from concordia_like.world.invariants import check_invariants
from concordia_like.world.loader import World, load_world
from concordia_like.world.replicate import replicate_residents
from concordia_like.world.rules import ApplyResult, apply_effects, validate
from concordia_like.world.schedule import EventOccurrence
from concordia_like.world.spec import (
    AttributeSpec,
    ItemSpec,
    PlaceSpec,
    ResidentSpec,
    ScheduledEventSpec,
    WorldSpec,
)
from concordia_like.world.state import (
    AttributeDef,
    Clock,
    Item,
    Place,
    Resident,
    ScheduledEvent,
    WorldState,
)
from concordia_like.world.world_effects import PropertyEffect, RuleEffect

__all__ = [
    "EFFECT_ADAPTER",
    "EFFECT_LIST_ADAPTER",
    "ApplyResult",
    "AttributeDef",
    "AttributeSpec",
    "Clock",
    "CreateEffect",
    "DestroyEffect",
    "Effect",
    "EffectBase",
    "EventOccurrence",
    "Item",
    "ItemSpec",
    "MoveEffect",
    "OpeningHours",
    "Place",
    "PlaceSpec",
    "PropertyEffect",
    "Resident",
    "ResidentSpec",
    "RuleEffect",
    "ScheduledEvent",
    "ScheduledEventSpec",
    "SetEffect",
    "TransferEffect",
    "World",
    "WorldSpec",
    "WorldState",
    "apply_effects",
    "check_invariants",
    "effect_to_dict",
    "load_world",
    "parse_effect",
    "replicate_residents",
    "validate",
]
