"""Shared fixtures of the test suite."""

import pytest

from support.llama_server import openai_server  # noqa: F401 - a session fixture for server tests

# -- associative memory ----------------------------------------------------------------


@pytest.fixture(scope="session")
def memory_embedder():
    """The real all-MiniLM-L6-v2 embedder, loaded once for the whole session."""
    from concordia_like.memory.embedder import get_embedder

    embedder = get_embedder()
    embedder.embed(["warm up the model"])
    return embedder


@pytest.fixture
def open_memory_store(tmp_path, memory_embedder):
    """Opens (and at the end closes) MemoryStores on a run folder in tmp_path, with
    real embeddings, real SQLite and a real Chroma index."""
    from concordia_like.memory.stream import MemoryStore

    opened = []

    def open_store(folder=None, **options):
        store = MemoryStore.open(folder or tmp_path / "run", embedder=memory_embedder, **options)
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        store.close()


@pytest.fixture
def memory_store(open_memory_store):
    return open_memory_store()


# -- engine, Game Master and CLI -------------------------------------------------------


@pytest.fixture
def fast_embedder(monkeypatch):
    """Every MemoryStore opened in the test embeds with the hashing stand-in
    (concordia_like.memory.hash_embedder): SQL, Chroma and scoring stay real, the model
    is skipped."""
    import concordia_like.memory.embedder as embedder_module
    from concordia_like.memory.hash_embedder import HashEmbedder

    embedder = HashEmbedder()
    monkeypatch.setattr(embedder_module, "_default", embedder)
    return embedder


@pytest.fixture
def runs_root(tmp_path, fast_embedder):
    """A folder for run stores, with the hashing embedder in place."""
    root = tmp_path / "runs"
    root.mkdir()
    return root
