# Conformance suite (conformance/, issue 5).
#
#   make conformance   the suite against the local stack (mock Auth0 + reference server, in-process on
#                      loopback, real headless Chromium); writes conformance-report/{junit.xml,report.json,index.html}
#                      and prints a progress line per check and the summary. CONFORMANCE_ARGS adds CLI flags,
#                      e.g. CONFORMANCE_ARGS='--label-filter PKCE --verbose'.
#   make build         also builds bin/mcp-auth-conformance (the CLI third parties run against their server).
#
# `make test` needs nothing extra from this fragment: the suite against the local stack
# (TestLocalStack) and its self-test against injected defects (TestDefects) are go tests under
# ./conformance/..., so `go test ./...` runs them; Chromium comes from hack/ensure-deps.sh.

BINARIES += mcp-auth-conformance
PKG_mcp-auth-conformance := ./conformance/cmd/mcp-auth-conformance

CONFORMANCE_REPORT_DIR ?= $(CURDIR)/conformance-report
CONFORMANCE_ARGS ?=

.PHONY: conformance
conformance: ## MCP auth conformance suite against the local stack; reports in conformance-report/
	$(GO) run ./conformance/internal/localstack/cmd/local-conformance --report-dir $(CONFORMANCE_REPORT_DIR) $(CONFORMANCE_ARGS)

.PHONY: conformance-peers
conformance-peers: ## run the suite against the MCP TypeScript SDK's proxy provider (needs npm registry access)
	conformance/peers/ts-sdk-proxy/run.sh
