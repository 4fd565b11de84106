# smartlabs — one Makefile; CI runs `make test`, the same command README names.
SHELL := /bin/bash
GO ?= go
export SMARTLABS_REQUIRE_BROWSER ?= 1
export SMARTLABS_REQUIRE_REDIS ?= 1
FUZZTIME ?= 15s

.DEFAULT_GOAL := help

include mk/assets.mk
include mk/image.mk

.PHONY: help
help: ## List the targets.
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

.PHONY: deps
deps: ## Install what the tests need on a fresh Debian machine (chromium, redis-server, npm packages).
	@need=""; command -v chromium >/dev/null || need="$$need chromium"; \
	command -v redis-server >/dev/null || need="$$need redis-server"; \
	if [ -n "$$need" ]; then \
		echo "installing:$$need"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$need >/dev/null; \
	fi
	@[ -d node_modules ] || npm ci --no-audit --no-fund

.PHONY: build
build: ## Build bin/smartlabs.
	$(GO) build -o bin/smartlabs ./cmd/smartlabs

.PHONY: lint
lint: ## gofmt, go vet, and no build outputs or large files tracked by git.
	$(GO) run ./cmd/repocheck
	@bad=$$(gofmt -l $$(git ls-files '*.go' | grep -v '_templ.go$$')); \
	if [ -n "$$bad" ]; then echo "gofmt needed:"; echo "$$bad"; exit 1; fi
	$(GO) vet ./...

.PHONY: test
test: deps check-generated lint ## Every test on a fresh machine: generated files, lint, unit + race + browser tests, Kubernetes manifests, short fuzz.
	$(GO) test -race -count=1 -timeout 12m ./...
	$(MAKE) --no-print-directory k8s-check
	$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZTIME)

.PHONY: k8s-check
k8s-check: ## Validate deploy/k8s offline (a Go module of its own): API types, the app's config, invariants.
	cd deploy/k8s/check && $(GO) vet ./... && $(GO) test -count=1 ./...

.PHONY: fuzz
fuzz: ## Short fuzz of the parsers that take outside input (FUZZTIME=15s each).
	$(GO) test ./server/config -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME)
	$(GO) test ./server/fhir -run '^$$' -fuzz '^FuzzDecodeBundle$$' -fuzztime $(FUZZTIME)
	$(GO) test ./server -run '^$$' -fuzz '^FuzzLaunchParams$$' -fuzztime $(FUZZTIME)
	$(GO) test ./server/labsview -run '^$$' -fuzz '^FuzzRenderLabs$$' -fuzztime $(FUZZTIME)

.PHONY: fuzz-long
fuzz-long: ## Long fuzzing (10 minutes per target).
	$(MAKE) --no-print-directory fuzz FUZZTIME=10m

.PHONY: demo
demo: ## Run the app with its EHR simulator.
	$(GO) run ./cmd/smartlabs demo

.PHONY: screenshots
screenshots: ## Re-take the README screenshots from the real app in headless Chromium.
	mkdir -p components/testdata/screenshots
	SMARTLABS_SCREENSHOTS=$(CURDIR)/components/testdata/screenshots $(GO) test ./server/e2e -count=1 -run 'TestEHRLaunchInCrossSiteFrame|TestSummaryDrillDownAndBack|TestAccessibility|TestEpicPatientInFrame'

.PHONY: bench
bench: ## Micro-benchmarks on one core: decode, view model and render of 100-20,000 results.
	$(GO) test ./server/bench ./server/fhir -run '^$$' -bench . -benchmem -cpu 1 -count 1

.PHONY: bench-e2e
bench-e2e: ## End-to-end benchmark in headless Chromium vs the sequential limit and a fhirclient SPA (writes server/bench/bench-e2e.md).
	cd server/bench/spa && { [ -d node_modules ] || npm ci --no-audit --no-fund; } && npm run --silent build
	SMARTLABS_BENCH_E2E=1 SMARTLABS_BENCH_OUT=$(CURDIR)/server/bench/bench-e2e.md $(GO) test ./server/bench/e2e -run '^TestBenchE2E$$' -count=1 -v -timeout 10m
	@cat server/bench/bench-e2e.md

.PHONY: load
load: ## Server overhead and throughput under a Go load generator, memory and Redis stores (writes server/bench/load.md).
	SMARTLABS_BENCH_LOAD=1 SMARTLABS_LOAD_OUT=$(CURDIR)/server/bench/load.md $(GO) test ./server/bench/load -run '^TestLoad$$' -count=1 -v -timeout 10m
	@cat server/bench/load.md
