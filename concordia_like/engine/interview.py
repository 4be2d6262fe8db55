"""Questions put to residents in character, that change nothing.

The sandbox's `interview` and an experiment's `ask` put a question the same way: the
resident answers from the memories the question brings up, retrieved without touching
their last-retrieved times, with a seed from (run seed, step, who, question) so that
asking never draws on, or moves, any random state of the run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from concordia_like.llm import LLMRequest
from concordia_like.llm.sampling import derive_seed
from concordia_like.memory.records import RetrievalQuery

if TYPE_CHECKING:
    from concordia_like.engine.simulation import Simulation

#: memories a question brings up
QUESTION_MEMORIES = 5


def question_requests(
    sim: Simulation,
    names: Sequence[str],
    question: str,
    *,
    tag: str,
    instruction: str,
    **request: Any,
) -> list[LLMRequest]:
    """One request per resident named: `question` asked of its own memories, answered
    as `instruction` says. `tag` keeps the seeds of different kinds of asking apart;
    `request` carries the rest of each LLMRequest (purpose, max_tokens, a constraint)."""
    now = sim.state.now
    found = sim.memory.retrieve_many(
        [RetrievalQuery(n, question, now, QUESTION_MEMORIES) for n in names], touch=False
    )
    requests = []
    for name, memories in zip(names, found, strict=True):
        agent = sim.agents[name]
        remembered = "\n".join(f"- {m.record.text}" for m in memories) or "- nothing in particular"
        where = sim.state.places[sim.state.location(name)].name
        doing = agent.activity or "going about your day"
        prompt = (
            f"It is {now:%A %H:%M}; you are at {where}, {doing}.\nYou remember:\n{remembered}\n"
            f'Someone asks you: "{question}"\nAnswer as {name}, in character. {instruction}'
        )
        requests.append(
            LLMRequest.chat(
                prompt,
                system=agent.prefix,
                agent=name,
                seed=derive_seed(sim.seed, sim.step, name, tag, question),
                **request,
            )
        )
    return requests
