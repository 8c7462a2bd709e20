# mk/chaos.mk — the chaos tier (chaos/, issue 11).
#
#   make chaos [CHAOS_ARGS='-chaos.clients=20 -chaos.scenarios=pgstop -chaos.pg-down=fast:30s']
#       N concurrent clients refresh and call the MCP endpoint of the real cnpg-mcp-server (a child
#       process, so kill -9 is real) while the harness kills the server, stops PostgreSQL and injects
#       upstream faults through the mock Auth0's admin API; prints one summary table per scenario and
#       fails on any lost grant, 401 for a valid token, unusable acknowledged token or unrecovered client.
#       The full run (-chaos.full) takes about 10 minutes; CHAOS_REPORT names a markdown summary file.
#
# `make test` runs the short version (TestChaos with its defaults: 6 clients, 3 faults per scenario,
# about a minute plus building the server) as an ordinary go test of ./chaos.

CHAOS_ARGS    ?=
CHAOS_TIMEOUT ?= 90m
CHAOS_REPORT  ?= $(CURDIR)/chaos-report.md

.PHONY: chaos
chaos: deps $(BIN)/cnpg-mcp-server ## chaos tier: kill -9, PostgreSQL outages, upstream faults under 20 clients (CHAOS_ARGS=…)
	CNPG_MCP_REQUIRE_ALL=1 CNPG_MCP_CHAOS_SERVER_BIN=$(BIN)/cnpg-mcp-server $(GO) test -count=1 -v -timeout $(CHAOS_TIMEOUT) \
	  -run '^TestChaos$$' ./chaos/ -args -chaos.full -chaos.report=$(CHAOS_REPORT) $(CHAOS_ARGS)
