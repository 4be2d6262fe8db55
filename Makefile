# The two commands a newcomer runs (see README.md): `make run` and `make test`.
# Both set everything up first (a virtual environment in .venv) and work offline
# except for the package registries.
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup run test test-fast lint fmt bench city

setup:
	bash scripts/setup/setup.sh

run: setup
	$(BIN)/concordia-like town worlds/town.yaml --start 07:00

test: setup
	$(BIN)/python -m pytest -q

# the unit tests alone: none that loads the embedded model, starts a server or a cluster,
# or runs the command in a subprocess or for hundreds of steps (see the markers in
# pyproject.toml)
test-fast: setup
	$(BIN)/python -m pytest -q -m "not embedded and not server and not stores and not vllm and not ray and not slow and not browser"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy concordia_like

fmt: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# the shipped generated city (docs/scale.md): regenerate after changing its spec
city: setup
	$(BIN)/concordia-like city worlds/city/city.yaml --n 1000 --seed 1 --out worlds/city/wendmouth-1000 --quiet

bench: setup
	$(BIN)/python scripts/bench/bench_llm.py --quick
	$(BIN)/python scripts/bench/bench_memory.py --memories 20000
	$(BIN)/python scripts/bench/bench_sim.py --quick
