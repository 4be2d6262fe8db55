"""Associative memory: records in SQL, a vector index by owner (Chroma collections or
exact search in memory), scored retrieval, importance, reflection and plans as data
(after Park et al., Generative Agents, 2023).

Heavy imports (torch, chromadb) happen only when a store or embedder is used."""

from concordia_like.memory.embedder import Embedder, get_embedder
from concordia_like.memory.exact import ExactIndex
from concordia_like.memory.importance import ImportanceScorer, heuristic_importance, is_trivial
from concordia_like.memory.index import ChromaIndex
from concordia_like.memory.layouts import AutoIndex, open_index, run_layout
from concordia_like.memory.plans import Activity, DayPlan, PlanBlock
from concordia_like.memory.records import (
    MEMORY_KINDS,
    MemoryKind,
    MemoryRecord,
    NewMemory,
    RetrievalQuery,
    ScoredMemory,
)
from concordia_like.memory.reflection import (
    PendingReflection,
    ReflectionConfig,
    ReflectionOutcome,
    Reflector,
)
from concordia_like.memory.scoring import Candidate, ScoringWeights, score_candidates
from concordia_like.memory.stream import MemoryStore

__all__ = [
    "MEMORY_KINDS",
    "Activity",
    "AutoIndex",
    "Candidate",
    "ChromaIndex",
    "DayPlan",
    "Embedder",
    "ExactIndex",
    "ImportanceScorer",
    "MemoryKind",
    "MemoryRecord",
    "MemoryStore",
    "NewMemory",
    "PendingReflection",
    "PlanBlock",
    "ReflectionConfig",
    "ReflectionOutcome",
    "Reflector",
    "RetrievalQuery",
    "ScoredMemory",
    "ScoringWeights",
    "get_embedder",
    "heuristic_importance",
    "is_trivial",
    "open_index",
    "run_layout",
    "score_candidates",
]
