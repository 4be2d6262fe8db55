"""The embedded backend: SmolLM2-135M-Instruct on llama.cpp, in process (`backend`),
with grammar-constrained sampling (`grammar`) and prefixes kept across calls
(`slots`); its model files are in `concordia_like.llm.model_files`."""

from concordia_like.llm.embedded.backend import EmbeddedBackend

__all__ = ["EmbeddedBackend"]
