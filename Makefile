# hsfpn-yolo: `make demo` trains an HS-FPN YOLOv8n on the built-in tiny-object dataset, `make test` runs the tests.
# Both create the local virtual environment (.venv) and install the package into it when needed.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.hsfpn-installed
DEPLOY_STAMP := $(VENV)/.hsfpn-deploy-installed

.PHONY: install deploy demo test test-slow test-compat clean

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

# Smoke subset against the lowest allowed and the newest Ultralytics 8.4.x, each installed without dependencies into
# its own folder that PYTHONPATH puts first (docs/compatibility.md); some releases also ship a top-level `tests`
# package, removed there so that ours is the one imported. The newest is skipped when .venv already has it.
COMPAT_LOWEST := 8.4.0
COMPAT_TESTS := tests/test_first_import.py tests/test_export_check.py tests/test_registration.py tests/test_train_export.py \
	tests/test_nwd.py tests/test_tiny_obb.py
COMPAT_DIR := $(VENV)/compat

test-compat: $(STAMP)
	@set -e; installed=$$($(BIN)/python -c "from importlib.metadata import version; print(version('ultralytics'))"); \
	for spec in "ultralytics==$(COMPAT_LOWEST)" "ultralytics>=$(COMPAT_LOWEST),<8.5"; do \
		dir="$(COMPAT_DIR)/$$(echo "$$spec" | tr -c 'A-Za-z0-9.\n' _)"; \
		$(BIN)/python -m pip install --disable-pip-version-check -q --no-deps --upgrade --target "$$dir" "$$spec"; \
		rm -rf "$$dir/tests"; \
		version=$$(PYTHONPATH="$$dir" $(BIN)/python -c "from importlib.metadata import version; print(version('ultralytics'))"); \
		if [ "$$spec" != "ultralytics==$(COMPAT_LOWEST)" ] && [ "$$version" = "$$installed" ]; then \
			echo "test-compat: ultralytics $$version is the one in $(VENV); make test covers it"; continue; fi; \
		echo "test-compat: ultralytics $$version"; \
		PYTHONPATH="$$dir" HSFPN_EXPECT_ULTRALYTICS="$$version" $(BIN)/python -m pytest $(COMPAT_TESTS); \
	done

clean:
	rm -rf $(VENV) runs
