"""The `concordia-like` command with the hashing embedder
(concordia_like.memory.hash_embedder) in place of the sentence model, for the tests that
run the CLI in a subprocess: `python -c "from support.fast_embedder import main; main()"
run ...`, with tests/ on PYTHONPATH."""

from __future__ import annotations

from concordia_like.memory.hash_embedder import install


def main() -> None:
    install()
    from concordia_like.cli.main import app

    app(prog_name="concordia-like")
