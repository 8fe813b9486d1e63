# The two commands: `make run` and `make test`. Everything else is set up by them.
PYTHON ?= python3
UV_VERSION := 0.13.9
BOOT := .venv-boot
UV := $(BOOT)/bin/uv
export UV_PYTHON_DOWNLOADS := never

.PHONY: run servers test install lint asyncapi openapi bench soak fuzz clean

$(UV):
	$(PYTHON) -m venv $(BOOT)
	$(BOOT)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

install: $(UV)
	$(UV) sync --locked --python $(PYTHON)

run: install
	$(UV) run --no-sync python -m devtools.stack run

# only the embedded NATS and PostgreSQL of the data dir (a restore, a migration of streams)
servers: install
	$(UV) run --no-sync python -m devtools.stack servers

# two pytest workers, each with its own embedded servers; a test file stays on one worker, the
# browser tests are one unit, slow files go first (docs/testing.md "Two workers");
# TEST_WORKERS=0 runs the suite in this process (as `python -m pytest` does)
TEST_WORKERS ?= 2
PYTEST_ARGS ?=

test: install
	$(UV) run --no-sync python -m pytest -n $(TEST_WORKERS) --dist loadfile --suite-schedule --durations=30 $(PYTEST_ARGS)

asyncapi: install
	$(UV) run --no-sync python -m shared.asyncapi docs/asyncapi.json

# docs/openapi.json, compared with the served document by the gateway's tests
openapi: install
	$(UV) run --no-sync python -m gateway.openapi_doc docs/openapi.json

bench: install
	$(UV) run --no-sync python bench/commands.py

# random faults under load on a 3-node cluster for PATCHBAY_SOAK_MINUTES (default 10); not in `make test`
soak: install
	$(UV) run --no-sync python -m pytest tests/faults/soak.py -s

# deep fuzzing, not in `make test` (which runs the same tests CI-sized): every property with
# 2,000 examples, schemathesis with PATCHBAY_FUZZ_EXAMPLES per operation and stateful scenarios
fuzz: install
	PATCHBAY_HYPOTHESIS_PROFILE=deep $(UV) run --no-sync python -m pytest -m "not servers" -q
	PATCHBAY_FUZZ_EXAMPLES=$${PATCHBAY_FUZZ_EXAMPLES:-100} PATCHBAY_FUZZ_SCENARIOS=$${PATCHBAY_FUZZ_SCENARIOS:-100} \
		$(UV) run --no-sync python -m pytest tests/fuzz -q

lint: install
	$(UV) run --no-sync ruff check .

clean:
	rm -rf .venv $(BOOT)
