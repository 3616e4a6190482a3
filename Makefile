# pinrelay developer tasks. `make local` runs the pipeline on this machine (no AWS account);
# `make test` runs every test. Both set up .venv (Python 3.13, the Lambda runtime) first.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3.13
# pyenv machines: make python3.13 resolvable (sam build's python3.13 workflow needs it too).
export PYENV_VERSION ?= 3.11.7:3.13.0
export SAM_CLI_TELEMETRY = 0

SAM_BIN := $(VENV)/bin/sam
SAM_BUILD_DIR := .aws-sam/build

.PHONY: setup local test crash simulate lint security build post-samples soak bench clean

## setup: create .venv with Python 3.13 and install pinrelay with its dev tools
setup: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml layers/pinrelay/requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@echo "setup: installing pinrelay and its dev tools into $(VENV) (about a minute the first time)"
	$(PY) -m pip install --progress-bar on -r layers/pinrelay/requirements.txt -e '.[dev]'
	touch $@

## local: moto (SQS, DynamoDB, Secrets Manager) + ingest on 127.0.0.1:$${LOCAL_PORT:-3000} + sender + Pinterest stand-in
local: setup
	$(PY) -m pinrelay_local run

## post-samples: sign and post every sample in events/ to the running local stack
post-samples: setup
	$(PY) -m pinrelay_local post-samples

## drill-NAME: play a failure against the running local stack (rejected, dlq, uncertain, reconcile: pinrelay_local.drills)
drill-%: setup
	$(PY) -m pinrelay_local drill $*

## test: unit, integration (moto server, real HTTP servers), end-to-end, browser and PHP snippet tests
test: setup
	@# Debian's Chromium for the browser tests (tests/browser) and php-cli for the WooCommerce snippet's
	@# (tests/php): only the tests need them; each says what to install when it cannot
	-.ci/browser-deps
	-.ci/php-deps
	@# two processes, a test file each at a time (pytest-xdist): 6 min instead of 12 on 2 CPUs
	$(PY) -m pytest -q -n 2 --dist loadfile -m "not crash"

## crash: every fault at every AWS call of the handlers, run as Lambda runs them (tests/crash); writes crash-results.md
crash: setup
	rm -rf .crash-results
	@# four processes: the cases mostly wait on killed and restarted handlers (5 min instead of 9 on 2 CPUs)
	$(PY) -m pytest -q -n 4 -m crash tests/crash
	$(PY) -m tests.crash.report

## simulate: the delivery simulation; SEED=N replays one run and prints its trace, else random seeds for SIM_BUDGET s (60); DEFECT=name puts a deliberate defect in
simulate: setup
	$(PY) -m tests.simulation $(if $(SEED),--seed $(SEED),--budget $${SIM_BUDGET:-60}) $(if $(DEFECT),--defect $(DEFECT))

## soak: EVENTS (default 20000) through the local stack while faults play; prints the ledger, fails on loss
soak: setup
	$(PY) -m pinrelay_bench.soak --events $${EVENTS:-20000}

## bench: CPU per event vs floor, cold starts, sender batching, AWS calls, log bytes, modeled bill (BENCH_ARGS=--quick)
bench: setup
	$(PY) -m pinrelay_bench --json bench.json $(BENCH_ARGS)

## lint: cfn-lint the SAM template and its offline samtranslator translation
lint: setup
	$(PY) -m pinrelay_tools.template

CHECKOV_VENV ?= .venv-checkov
CHECKOV := $(CHECKOV_VENV)/bin/checkov

## security: checkov on template.yaml and on SAM's offline translation (accepted findings and why: .checkov.yaml)
security: setup $(CHECKOV)
	$(PY) -m pinrelay_tools.template
	$(CHECKOV) --config-file .checkov.yaml --file template.yaml
	$(CHECKOV) --config-file .checkov.yaml --file .aws-sam/lint/translated.json

# checkov pins boto3/botocore/networkx/packaging below what .venv needs: it gets a venv of its own
$(CHECKOV):
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet 'checkov==3.3.30'

## build: sam build (no Docker; arm64 wheels) + .pyc compiled by 3.13 for Lambda cold starts
build: setup
	test -x $(SAM_BIN) || $(PY) -m pip install --quiet -e '.[dev,deploy]'
	$(SAM_BIN) build --template-file template.yaml --build-dir $(SAM_BUILD_DIR)
	$(PYTHON) -m compileall -q --invalidation-mode unchecked-hash $(SAM_BUILD_DIR)

clean:
	rm -rf .aws-sam .pytest_cache $(VENV) $(CHECKOV_VENV)
