# mk/bench.mk — side-by-side benchmarks (bench/).
#
#   make bench-peers   our server (all tools, and one small tool) against the npm peers of
#                      conformance/peers (the TS SDK proxy, fastmcp TypeScript), each behind its own
#                      mock Auth0, signed in through Chromium; interleaved rounds of tools/list and
#                      ping at concurrency 1/8/32, refresh chains, CPU per 1,000 requests and RSS from
#                      /proc; prints the ratio table and the load average. Needs Node.js, the npm
#                      registry the first time (installs shared with make conformance-peers) and Chromium.
#                      BENCH_ARGS passes flags (BENCH_ARGS='--rounds 5 --requests 4000'; --help lists
#                      them); BENCH_WRITE_RESULT=1 also writes bench/RESULT.md.
#
# bin/cnpg-mcp-server-benchtool is the server built with -tags benchtool: the same program plus the
# benchmark's one-tool toolset "bench" (server/tools/benchtool.go) and a CPU profile on request
# (server/benchprofile.go). It is not part of `make build` or the images.

BENCH_ARGS         ?=
BENCH_WRITE_RESULT ?=

$(BIN)/cnpg-mcp-server-benchtool: FORCE
	@mkdir -p $(BIN)
	@echo "go build -tags benchtool -o bin/cnpg-mcp-server-benchtool ./server" >&2
	@CGO_ENABLED=0 $(GO) build -trimpath -tags benchtool -o $@ ./server

.PHONY: bench-peers
bench-peers: deps $(BIN)/mockauth0 $(BIN)/cnpg-mcp-server $(BIN)/cnpg-mcp-server-benchtool ## our server vs the npm peers: tools/list, ping, refresh; ratio table (BENCH_WRITE_RESULT=1 writes bench/RESULT.md)
	$(GO) run ./bench/cmd/bench-peers --bin $(BIN) $(if $(BENCH_WRITE_RESULT),--result bench/RESULT.md) $(BENCH_ARGS)
