# mk/lint.mk — staticcheck for `make lint` (and so `make test` and CI).
#
# Built once from its Go module at the version pinned in hack/versions.env into
# $(CACHE_DIR)/tools/staticcheck-<version> (like Helm); `make clean-cache` removes it. It runs with its
# default checks; a finding fails the lint. Suppress nothing without a //lint:ignore CHECK reason that
# would convince a reviewer.

STATICCHECK_VERSION := $(shell . hack/versions.env && echo $$STATICCHECK_VERSION)
STATICCHECK_DIR     := $(CACHE_DIR)/tools/staticcheck-$(STATICCHECK_VERSION)
STATICCHECK         := $(STATICCHECK_DIR)/staticcheck

$(STATICCHECK):
	@mkdir -p $(STATICCHECK_DIR)
	@echo "building staticcheck $(STATICCHECK_VERSION) from the Go module proxy into $(STATICCHECK_DIR)"
	@cd $(STATICCHECK_DIR) && GOBIN=$(STATICCHECK_DIR) GOFLAGS=-mod=mod GOWORK=off CGO_ENABLED=0 \
	  $(GO) install -trimpath honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

.PHONY: staticcheck
staticcheck: $(STATICCHECK) ## staticcheck ./... (the pinned version, built into CACHE_DIR)
	$(STATICCHECK) ./...
