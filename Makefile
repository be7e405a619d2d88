# The two set-up commands the README promises: each creates .venv and installs before running.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: up test conformance bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

up: $(STAMP)
	$(BIN)/pykube-server up

test: $(STAMP)
	sh tools/install-etcd.sh
	$(BIN)/python -m pytest -q --reruns 1 --reruns-delay 1 tests conformance/kubectl

conformance: $(STAMP)
	$(BIN)/python -m conformance.report

bench: $(STAMP)
	$(BIN)/python bench/api.py
	$(BIN)/python bench/scheduler.py
	$(BIN)/python bench/kubelet.py
	$(BIN)/python bench/controllers.py

clean:
	rm -rf $(VENV) .pykube
