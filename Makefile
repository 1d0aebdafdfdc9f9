# Two commands do all the set-up on a fresh machine:  make demo   and   make test
# TORCH_SPEC pins the CPU build that lies on the CI machines' disk; on a GPU machine install your
# own torch into the venv first (or run: make TORCH_SPEC="torch" ...).
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
# The `interop` extra of pyproject.toml (NIR readers for tests/test_nir_interop.py, SpikingJelly for the
# conversion and benchmark comparisons), installed without their requirements: norse's and SpikingJelly's
# torchvision would replace the CPU torch. Keep the two lists the same.
INTEROP_SPEC ?= snntorch==1.0.0 norse==1.1.0 nirtorch==2.6 spikingjelly==2.0.0 loguru==0.7.3
# The lowest nir that pyproject's export extra allows: its wheel (pure Python, 30 kB) is kept beside the
# venv so that tests/test_export.py exports with it, without downloading anything during the tests.
OLDEST_NIR ?= 1.0.3
PY := $(VENV)/bin/python

.PHONY: demo test install

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[all]"
	$(PY) -m pip install -q --no-deps $(INTEROP_SPEC)
	$(PY) -m pip download -q --no-deps -d $(VENV)/oldest-nir "nir==$(OLDEST_NIR)"
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/spikedistill demo --out demo_out

test: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m pytest -q --durations=15
