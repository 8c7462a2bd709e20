# cnpg-mcp — top-level Makefile.
#
# Main targets (see README.md):
#   make run          mock Auth0 + reference server on loopback (embedded store); prints "MCP endpoint: <url>";
#                     RUN_ARGS passes devstack's and the server's flags (make run RUN_ARGS=--help)
#   make test         every test tier that runs in CI (installs missing Debian packages when run as root)
#   make build        binaries into bin/
#   make lint         gofmt + go vet
#
# Component fragments live in mk/*.mk and add to TEST_PREREQS / TEST_EXTRA.
# Expensive, reusable artefacts (Kubernetes binaries, images) are cached under $(CACHE_DIR);
# `make clean-cache` removes them and the next run rebuilds them.

SHELL        := /bin/bash
GO           ?= go
BIN          := $(CURDIR)/bin
CACHE_DIR    ?= $(HOME)/.cache/cnpg-mcp
GOTESTFLAGS  ?= -count=1 -timeout 30m
export CACHE_DIR

BINARIES := mockauth0
PKG_mockauth0 := ./mockauth0/cmd/mockauth0

# Filled in by mk/*.mk fragments.
TEST_PREREQS :=
TEST_EXTRA   :=
TEST_ENV     :=

.DEFAULT_GOAL := help

.PHONY: help
help: ## show the main targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | sort | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

-include $(wildcard mk/*.mk)

.PHONY: build
build: $(addprefix $(BIN)/,$(BINARIES)) ## build every binary into bin/

$(BIN)/%: FORCE
	@mkdir -p $(BIN)
	@echo "go build -o bin/$* $(PKG_$*)" >&2
	@CGO_ENABLED=0 $(GO) build -trimpath -o $@ $(PKG_$*)

.PHONY: FORCE
FORCE:

.PHONY: deps
deps: ## install the Debian packages the tests need (as root), or say which are missing
	@hack/ensure-deps.sh

.PHONY: lint
lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

.PHONY: test
test: deps lint $(TEST_PREREQS) ## run all tests (unit, HTTP, stores, tools against kube-apiserver, conformance, chart)
	$(TEST_ENV) CNPG_MCP_REQUIRE_ALL=1 $(GO) test $(GOTESTFLAGS) ./...
	@for t in $(TEST_EXTRA); do $(MAKE) --no-print-directory $$t || exit 1; done

.PHONY: run
run: $(BIN)/devstack ## mock Auth0 + reference server on loopback; RUN_ARGS="--mcp-read-only ..." (RUN_ARGS=--help lists them)
	@$(BIN)/devstack $(RUN_ARGS)

.PHONY: clean
clean: ## remove bin/ and reports
	rm -rf $(BIN) conformance-report

.PHONY: clean-cache
clean-cache: ## remove cached Kubernetes binaries and images under CACHE_DIR (rebuilt on next use)
	rm -rf $(CACHE_DIR)
