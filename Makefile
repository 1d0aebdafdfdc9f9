# Two commands do all the set-up on a fresh machine:  make demo   and   make test
# TORCH_SPEC pins the CPU build that lies on the CI machines' disk; on a GPU machine install your
# own torch into the venv first (or run: make TORCH_SPEC="torch" ...).
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python

.PHONY: demo test install

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[all]"
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/spikedistill demo --out demo_out

test: $(VENV)/.installed
	$(PY) -m pytest -q --durations=15
