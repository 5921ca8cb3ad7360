# hsfpn-yolo: `make demo` trains an HS-FPN YOLOv8n on the built-in tiny-object dataset, `make test` runs the tests.
# Both create the local virtual environment (.venv) and install the package into it when needed.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.hsfpn-installed
DEPLOY_STAMP := $(VENV)/.hsfpn-deploy-installed

.PHONY: install deploy demo test test-slow clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -e ".[test]"
	@touch $(STAMP)

deploy: $(DEPLOY_STAMP)  # the export converters (TensorFlow among them: large), for the slow export tests

$(DEPLOY_STAMP): $(STAMP)
	$(BIN)/python -m pip install --disable-pip-version-check -e ".[test,deploy]"
	@touch $@

demo:  # the install and the training are timed apart
	@start=$$(date +%s); $(MAKE) --no-print-directory install && \
		echo "hsfpn-yolo: install took $$(( $$(date +%s) - start )) s"
	$(BIN)/hsfpn-yolo demo

test: $(STAMP)
	$(BIN)/python -m pytest

test-slow: $(DEPLOY_STAMP)
	$(BIN)/python -m pytest -m slow

clean:
	rm -rf $(VENV) runs
