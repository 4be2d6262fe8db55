"""Helpers shared by the tests: worlds and scripted models (`engine`, `experiment`),
the `concordia-like` command with the hashing embedder (`fast_embedder`), and the real
servers some tests start on 127.0.0.1 (`llama_server`, `scripted_http`, `postgres`,
`vllm_server`)."""
