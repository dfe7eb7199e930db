# Set-up-and-run (`make demo`) and tests (`make test`) on a fresh machine.
# A CPU build of torch is installed unless the venv already has a torch
# (GPU users: create .venv and install their own torch first).
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
TORCHREC ?= torchrec==1.8.0
PY := $(VENV)/bin/python

.PHONY: install demo test docs

$(PY):
	$(PYTHON) -m venv $(VENV)

install: $(PY)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[test,text,docs,distributed]"
	$(PY) -m pip install -q --no-deps "$(TORCHREC)"

demo: install
	$(PY) examples/demo.py --out runs/demo-$$(date +%Y%m%d-%H%M%S)

test: install
	$(PY) -m pytest -q

docs: install
	$(VENV)/bin/mkdocs build --strict
