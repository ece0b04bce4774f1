# Every target bootstraps what it needs: a fresh clone only needs python3 (3.11+) and network access to PyPI.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help demo sandbox bench test soak lint typecheck unit integration lock clean render install

help:
	@echo "make install  the keyreport command in its own virtual environment, linked into $(PREFIX)/bin"
	@echo "make demo     run the real Lambda handler against the local sandbox (AWS + Azure stand-ins), both sinks:"
	@echo "              SINK=logs_ingestion or SINK=data_collector runs one"
	@echo "make test     lint, type-check and every test"
	@echo "make soak     the deadline fault cases with a 60 s Lambda timeout (longer than make test's)"
	@echo "make sandbox  start the sandbox alone and print the environment that points keyreport at it (USERS=300)"
	@echo "make lock     re-resolve the pinned lock files from pyproject.toml"
	@echo "make render   re-render the generated files: workbook and alert rules (queries/*.kql),"
	@echo "              azure/logs-ingestion.json (queries/schema.json)"
	@echo "make bench    scale benchmarks (about 40 minutes); results go to bench/RESULTS.md by hand"
	@echo "make package  build/keyreport-lambda.zip for one sink (SINK=logs_ingestion default, data_collector, all),"
	@echo "              reproducible (LAMBDA_PYTHON=python3.13 path, NO_COMPILE=1)"
	@echo "make deploy   package, upload and deploy the stack: STACK=.. ARTIFACT_BUCKET=.. PARAMS='Key=Value ..'"

$(STAMP): requirements-dev.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes -r requirements-dev.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

# `make install`: the CLI for a person, not the development tools: `pip install .` into a virtual environment of
# its own (PREFIX/share/keyreport), its `keyreport` linked into PREFIX/bin (on PATH for most shells).
PREFIX ?= $(HOME)/.local
INSTALL_VENV = $(PREFIX)/share/keyreport
install:
	$(PYTHON) -m venv $(INSTALL_VENV)
	$(INSTALL_VENV)/bin/pip install --quiet --disable-pip-version-check .
	mkdir -p $(PREFIX)/bin
	ln -sf $(INSTALL_VENV)/bin/keyreport $(PREFIX)/bin/keyreport
	@case ":$$PATH:" in *":$(PREFIX)/bin:"*) ;; *) echo "add $(PREFIX)/bin to PATH to run keyreport";; esac
	@echo "installed: $(PREFIX)/bin/keyreport ($$($(PREFIX)/bin/keyreport --version))"

# Microsoft's Kusto analyser (tests/queries/kql_check.js) runs on node, from the committed package-lock.json.
KQL_CHECK := tests/queries
KQL_STAMP := $(KQL_CHECK)/node_modules/.installed
$(KQL_STAMP): $(KQL_CHECK)/package.json $(KQL_CHECK)/package-lock.json
	cd $(KQL_CHECK) && npm ci --no-audit --no-fund
	touch $@

# The workbook and alert rules are rendered from queries/*.kql, azure/logs-ingestion.json from
# queries/schema.json (scripts/render*.py): run after changing either; the tests fail while a file is stale.
render: $(STAMP)
	$(BIN)/python -m scripts.render

demo: $(STAMP)
	$(BIN)/python -m sandbox.demo $(if $(SINK),--sink $(SINK))

sandbox: $(STAMP)
	$(BIN)/python -m sandbox $(if $(USERS),--users $(USERS))

# Not part of `make test`: wall-clock figures belong in bench/RESULTS.md, measured on a quiet machine.
bench: $(STAMP)
	$(BIN)/python -m bench.scale latency --users 1000 5000 --concurrency 24 24 24 | tee bench/latest-latency.jsonl
	$(BIN)/python -m bench.scale throttle --users 5000 --retry-mode standard | tee bench/latest-throttle.jsonl
	$(BIN)/python -m bench.scale throttle --users 5000 --retry-mode adaptive | tee -a bench/latest-throttle.jsonl
	$(BIN)/python -m bench.scale memory --users 1000 5000 | tee bench/latest-memory.jsonl
	$(BIN)/python -m bench.scale latency --users 1000 5000 --no-baseline --report-seconds 0 10 0 10 | tee bench/latest-report.jsonl
	$(BIN)/python -m bench.organization --accounts 20 --users 300 --concurrent 1 5 20 | tee bench/latest-organization.jsonl
	$(BIN)/python -m bench.cold_start --repeat 5 | tee bench/latest-cold-start.jsonl

lint: $(STAMP)
	$(BIN)/ruff check lambda sandbox tests scripts bench
	$(BIN)/ruff format --check lambda sandbox tests scripts bench

typecheck: $(STAMP)
	$(BIN)/mypy lambda/keyreport sandbox scripts bench

test: lint typecheck cfn-check $(STAMP) $(KQL_STAMP)
	$(BIN)/pytest -q -n 2

# The deadline cases of `make test` with a 60 s Lambda timeout and the deployed 20 s margin (about 10 minutes), and
# the current state's model test with 100 histories (about 15 minutes more on two busy cores), and the queries over
# KeyReport_Findings with DuckDB's default optimizers against the local engine's settings (tests/queries/test_local_engine.py).
soak: $(STAMP)
	$(BIN)/pytest -q -n 2 -m soak tests/integration/test_deadline.py tests/queries/test_state_model.py \
		tests/queries/test_local_engine.py

lock: $(STAMP)
	$(BIN)/pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes -o requirements-dev.lock
	$(BIN)/uv pip compile pyproject.toml --python-version 3.13 --python-platform aarch64-manylinux_2_28 \
		--generate-hashes -o requirements.lock
	$(BIN)/uv pip compile requirements-checkov.in --universal --python-version 3.11 --generate-hashes \
		-o requirements-checkov.txt

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis $(CHECKOV_VENV) build

# --- CloudFormation: checks, package, deploy (docs/deployment.md) ---------------------------------------
.PHONY: cfn-check cfn-lint checkov package deploy deploy-prerequisites
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
TEMPLATES := cloudformation/template.yaml cloudformation/member-role.yaml cloudformation/iam-events-forwarder.yaml
PACKAGE_ZIP := build/keyreport-lambda.zip
STACK ?= keyreport

# checkov pins old boto3/urllib3: it gets a virtual environment of its own.
$(CHECKOV_STAMP): requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check --require-hashes -r requirements-checkov.txt
	touch $@

cfn-check: cfn-lint checkov

cfn-lint: $(STAMP)
	$(BIN)/cfn-lint $(TEMPLATES)

checkov: $(CHECKOV_STAMP)
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation \
		$(foreach t,$(TEMPLATES),--file $(t))

# One package per sink (scripts/package_lambda.py): the function carries its configured sink's SDK only.
# `make deploy` builds the package for the Sink named in PARAMS (default logs_ingestion, the stack's).
SINK_PARAM := $(patsubst Sink=%,%,$(filter Sink=%,$(PARAMS)))
PACKAGE_SINK = $(or $(SINK),$(SINK_PARAM),logs_ingestion)

package: $(STAMP)
	$(BIN)/python scripts/package_lambda.py --output $(PACKAGE_ZIP) --sink $(PACKAGE_SINK) \
		$(if $(LAMBDA_PYTHON),--python $(LAMBDA_PYTHON)) $(if $(NO_COMPILE),--no-compile)

# The package is content-addressed in S3 (its SHA-256 in the key): an unchanged build changes nothing.
deploy: deploy-prerequisites package
	key=keyreport/lambda-$$(sha256sum $(PACKAGE_ZIP) | cut -c1-64).zip && \
	aws s3 cp --only-show-errors $(PACKAGE_ZIP) "s3://$(ARTIFACT_BUCKET)/$$key" && \
	aws cloudformation deploy --stack-name $(STACK) --template-file cloudformation/template.yaml \
		--s3-bucket $(ARTIFACT_BUCKET) --s3-prefix keyreport/templates \
		--capabilities CAPABILITY_NAMED_IAM --no-fail-on-empty-changeset \
		--parameter-overrides CodeS3Bucket=$(ARTIFACT_BUCKET) CodeS3Key=$$key $(PARAMS)

deploy-prerequisites:
	@test -n "$(ARTIFACT_BUCKET)" || { echo "make deploy: set ARTIFACT_BUCKET (an S3 bucket you own in the stack's region); see docs/deployment.md" >&2; exit 2; }
	@command -v aws >/dev/null || { echo "make deploy: needs the AWS CLI v2 (aws) on PATH" >&2; exit 2; }
