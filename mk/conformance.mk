# Conformance suite (conformance/, issue 5).
#
#   make conformance   the suite against the local stack (mock Auth0 + reference server, in-process on
#                      loopback, real headless Chromium); writes conformance-report/{junit.xml,report.json,index.html}
#                      and prints a progress line per check and the summary. CONFORMANCE_ARGS adds CLI flags,
#                      e.g. CONFORMANCE_ARGS='--label-filter PKCE --verbose'.
#   make build         also builds bin/mcp-auth-conformance (the CLI third parties run against their server).
#
# `make test` runs the suite against the local stack (TestLocalStack) and its self-test against injected
# defects (TestDefects) as go tests under ./conformance/... (Chromium comes from hack/ensure-deps.sh),
# then conformance-peers (below; needs Node.js and the npm registry).

BINARIES += mcp-auth-conformance
PKG_mcp-auth-conformance := ./conformance/cmd/mcp-auth-conformance

CONFORMANCE_REPORT_DIR ?= $(CURDIR)/conformance-report
CONFORMANCE_ARGS ?=

.PHONY: conformance
conformance: ## MCP auth conformance suite against the local stack; reports in conformance-report/
	$(GO) run ./conformance/internal/localstack/cmd/local-conformance --report-dir $(CONFORMANCE_REPORT_DIR) $(CONFORMANCE_ARGS)

# make test runs conformance-peers after the go tests (TEST_EXTRA): ~2.5 min with the npm installs
# cached, ~3.5 min cold; it is the gate that keeps the suite's verdicts true on servers we did not write.
TEST_EXTRA += conformance-peers

# make conformance-peers [PEERS=fastmcp-ts] [PEERS_WRITE_RESULT=1]: the suite against the third-party
# servers under conformance/peers (from npm, pinned by each peer's package-lock.json, installed into
# $(CACHE_DIR)/peers), each verdict checked against the peer's expected.yaml (TestPeers). Needs Node.js
# and the npm registry. PEERS_WRITE_RESULT=1 also rewrites each peer's RESULT.md.
PEERS              ?=
PEERS_WRITE_RESULT ?=

.PHONY: conformance-peers
conformance-peers: ## the suite against the npm peers (TS SDK proxy, fastmcp); fails when a verdict differs from conformance/peers/*/expected.yaml
	CNPG_MCP_PEERS=1 CNPG_MCP_PEERS_WRITE_RESULT=$(PEERS_WRITE_RESULT) $(GO) test -count=1 -timeout 40m -v \
	  -run 'TestPeers$(if $(PEERS),/$(PEERS))' ./conformance/peers/
