# mk/tools.mk — the MCP endpoint and the CloudNativePG tools (issue 4).
#
# `make test` gets: the kube-apiserver + etcd binaries (built once from Go modules, cached under
# $(CACHE_DIR)/kube/<version>/bin) and KUBEBIN_DIR pointing at them, so server/tools and
# internal/kubetest run against a real API server.

TOOLS_K8S_VERSION := $(shell . hack/versions.env && echo $$K8S_VERSION)
KUBEBIN_DIR ?= $(CACHE_DIR)/kube/$(TOOLS_K8S_VERSION)/bin

TEST_PREREQS += kubebins
TEST_ENV += KUBEBIN_DIR=$(KUBEBIN_DIR)

.PHONY: kubebins
kubebins: ## build kube-apiserver + etcd from Go modules into CACHE_DIR (cached; 10-20 min the first time)
	@hack/kubebins.sh kube-apiserver etcd >/dev/null

.PHONY: tools-doc
tools-doc: ## regenerate docs/tools.md from the tool definitions
	$(GO) generate ./server/mcpserver

.PHONY: cnpg-crds
cnpg-crds: ## re-extract the pinned CloudNativePG CRDs (internal/kubetest/crds) from the operator module
	hack/cnpg-crds.sh

.PHONY: bench-tools-list
bench-tools-list: ## tools/list CPU and bytes per request through the bearer check: from memory, mcp-go's own, ping
	$(GO) test ./server/mcpserver -run '^$$' -bench ToolsList -benchmem -benchtime 2000x -count 6

.PHONY: bench-tools
bench-tools: kubebins ## bearer-check overhead benchmarks + 50-client/30 s load run against kube-apiserver
	KUBEBIN_DIR=$(KUBEBIN_DIR) $(GO) test ./server/tools -run '^$$' -bench 'Bearer' -benchtime 2000x -count 3
	KUBEBIN_DIR=$(KUBEBIN_DIR) CNPG_MCP_LOAD=1 $(GO) test ./server/tools -run '^TestLoad$$' -count 1 -v
