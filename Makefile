# hsfpn-yolo: `make demo` trains an HS-FPN YOLOv8n on the built-in tiny-object dataset, `make test` runs the tests.
# Both create the local virtual environment (.venv) and install the package into it when needed.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.hsfpn-installed

.PHONY: install demo test clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -e ".[test]"
	@touch $(STAMP)

demo:  # the install and the training are timed apart
	@start=$$(date +%s); $(MAKE) --no-print-directory install && \
		echo "hsfpn-yolo: install took $$(( $$(date +%s) - start )) s"
	$(BIN)/hsfpn-yolo demo

test: $(STAMP)
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) runs
