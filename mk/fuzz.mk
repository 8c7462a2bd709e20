# mk/fuzz.mk — Go native fuzzing of every entry point (issue 11).
#
#   make fuzz [FUZZTIME=10m] [FUZZ_TARGETS=regexp]   every func FuzzX in *_test.go, one after another,
#                                                    each for FUZZTIME; a summary line per target
#
# The seed corpora (f.Add and testdata/fuzz/FuzzX/*) run in `make test` as ordinary tests.

FUZZTIME     ?= 30s
FUZZ_TARGETS ?= .

.PHONY: fuzz
fuzz: ## run every fuzz target for FUZZTIME each (FUZZ_TARGETS=regexp selects)
	@FUZZTIME=$(FUZZTIME) FUZZ_TARGETS='$(FUZZ_TARGETS)' GO=$(GO) hack/fuzz.sh
