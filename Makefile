# pinrelay developer tasks. Other targets (setup, test, local, ...) live alongside these.
VENV ?= .venv
PY := $(VENV)/bin/python

SAM_BIN := $(VENV)/bin/sam
SAM_BUILD_DIR := .aws-sam/build
# pyenv: make python3.13 resolvable on PATH (lambda-builders needs it for the python3.13 runtime).
SAM_PYENV_VERSION := 3.11.7:3.13.0

.PHONY: lint build

## lint: cfn-lint the SAM template and its offline samtranslator translation
lint:
	PYTHONPATH=local $(PY) -m pinrelay_local.lint_template

## build: sam build (no Docker; arm64 wheels) + precompile .pyc for Lambda cold starts
build:
	export PYENV_VERSION=$(SAM_PYENV_VERSION) SAM_CLI_TELEMETRY=0; \
	$(SAM_BIN) build --template-file template.yaml --build-dir $(SAM_BUILD_DIR) && \
	python3.13 -m compileall -q --invalidation-mode unchecked-hash $(SAM_BUILD_DIR)
