# eucaim-node — the two commands a newcomer needs: `make up` and `make test`.
# Everything else is installed on first use (uv, Python packages, Kafka, FerretDB, Orthanc, dcmtk).

SHELL := /bin/bash
.DEFAULT_GOAL := help
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
SYNCED := .venv/.synced

.PHONY: help up demo down status test test-unit lint asyncapi openapi mongo-users bench-deid bench-pipeline bench-dataset bench-audit clean helm-lint image deploy-check

help:  ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(SYNCED): pyproject.toml uv.lock $(wildcard libs/*/pyproject.toml services/*/pyproject.toml)
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet "uv==0.13.9"
	$(UV) sync --all-packages --locked
	@touch $@

up: $(SYNCED)  ## Run the node with a sample study pushed through; Ctrl-C stops everything
	$(UV) run eucaim-node up

demo: $(SYNCED)  ## Non-interactive: up, sample, wait until catalogued and audited, summary, down
	$(UV) run eucaim-node demo

down: $(SYNCED)  ## Stop everything `make up` started
	$(UV) run eucaim-node stack down

status: $(SYNCED)  ## Each component's endpoint and health
	$(UV) run eucaim-node status

test: $(SYNCED)  ## All tests: unit, integration and end-to-end (starts the real stack on test ports)
	$(UV) run eucaim-node stack install
	$(UV) run pytest

test-unit: $(SYNCED)  ## Only the tests that need no services (dciodvfy and tesseract are still needed)
	$(UV) run eucaim-node stack install
	$(UV) run pytest -m "not integration"

lint: $(SYNCED)  ## The dependency rules (import-linter) and ruff alone; both also run in test-unit
	$(UV) run lint-imports
	$(UV) run ruff check .

asyncapi: $(SYNCED)  ## Regenerate docs/asyncapi.json from the services' code
	$(UV) run python scripts/asyncapi.py

openapi: $(SYNCED)  ## Regenerate docs/openapi.json (the federation HTTP API) from catalogue-sync's code
	$(UV) run python scripts/openapi.py

mongo-users: $(SYNCED)  ## Regenerate the MongoDB roles and users script (Helm, compose) from eucaim_node.store.access
	$(UV) run python scripts/mongo_users.py

bench-dataset: $(SYNCED)  ## Dataset materialisation benchmark (instances/s next to cp -r and cp -al of the same files)
	$(UV) run python scripts/datasets/bench.py

bench-deid: $(SYNCED)  ## De-identification benchmark (ratios to the pydicom read+write floor)
	$(UV) run --with dicognito==0.19.0 --with deid==0.4.13 python scripts/deid/bench.py

bench-audit: $(SYNCED)  ## Audit ledger at 1k/10k/100k records: verify time per record, prove reads (docs/benchmarks.md)
	$(UV) run eucaim-node stack up
	$(UV) run python scripts/bench/audit.py $(BENCH_ARGS)

bench-pipeline: $(SYNCED)  ## Whole-node throughput against Orthanc's own ingest + anonymize (docs/benchmarks.md)
	$(UV) run eucaim-node stack install
	$(UV) run python scripts/bench/pipeline.py $(BENCH_ARGS)

clean:  ## Remove local stack state (data, logs, secrets); keeps the download cache
	-$(UV) run eucaim-node stack down
	rm -rf .stack

helm-lint: $(SYNCED)  ## Lint the Helm chart (helm v3.22.0 strict) and validate what it renders (kubernetes-validate strict), also with the job service on
	@HELM=$$($(UV) run python deploy/helm/helm_tool.py) && \
	  $$HELM lint --strict deploy/helm/eucaim-node && \
	  mkdir -p .stack && $$HELM template node deploy/helm/eucaim-node --namespace eucaim > .stack/helm-rendered.yaml && \
	  $(UV) run kubernetes-validate --strict --quiet .stack/helm-rendered.yaml && \
	  $$HELM lint --strict deploy/helm/eucaim-node -f deploy/helm/eucaim-node/ci/jobs-values.yaml && \
	  $$HELM template node deploy/helm/eucaim-node --namespace eucaim -f deploy/helm/eucaim-node/ci/jobs-values.yaml \
	    > .stack/helm-rendered-jobs.yaml && \
	  $(UV) run kubernetes-validate --strict --quiet .stack/helm-rendered-jobs.yaml && \
	  echo "helm chart: lint and strict validation passed (defaults, and with the job service on)"

image: $(SYNCED)  ## Build the container image with podman on a local Debian base (nothing pulled); prints its size
	$(UV) run python scripts/image.py

deploy-check: $(SYNCED)  ## The chart's workloads in podman (kube play) on local infrastructure, a study through, torn down
	$(UV) run eucaim-node stack install
	$(UV) run python scripts/deploy_check.py
