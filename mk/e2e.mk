# mk/e2e.mk — the Helm chart, the container images, the kind cluster and `make e2e`.
#
#   make helm-lint          helm lint + helm template of chart/cnpg-mcp in every supported configuration
#   make images             our images (cnpg-mcp-server, mockauth0, mcp-auth-conformance) with the local Docker
#   make offline-images     every image the offline cluster needs, built from Go modules + Debian (cached)
#   make e2e [OFFLINE=1]    kind + CloudNativePG + the chart + the conformance suite + the tool checks
#   make e2e-down           delete the e2e cluster and the containers beside it
#
# Versions are pinned in hack/versions.env. Helm is built from the Go module proxy into $(CACHE_DIR).

include hack/versions.env

HELM_DIR      := $(CACHE_DIR)/tools/helm-$(HELM_VERSION)
HELM          := $(HELM_DIR)/helm
CHART         := chart/cnpg-mcp
IMAGE_TAG     ?= dev
IMAGE_PREFIX  ?= cnpg-mcp
E2E_CLUSTER   ?= cnpg-mcp-e2e
OFFLINE       ?=
E2E_REPORT    ?= $(CURDIR)/e2e-report
DOCKER        ?= docker

TEST_PREREQS += $(HELM)
TEST_ENV     += HELM=$(HELM)
TEST_EXTRA   += helm-lint

# Helm from the Go module proxy, with the version and Kubernetes capabilities its own Makefile stamps in.
$(HELM):
	@mkdir -p $(HELM_DIR)
	@echo "building helm $(HELM_VERSION) from the Go module proxy into $(HELM_DIR)"
	@kmod=$$($(GO) mod download -json helm.sh/helm/v3@$(HELM_VERSION) | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p'); \
	kminor=$$(sed -n 's/^[[:space:]]*k8s.io\/client-go v0\.\([0-9]*\)\..*/\1/p' $$kmod); \
	ld="-s -w -X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION) -X helm.sh/helm/v3/internal/version.gitTreeState=clean"; \
	for p in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do \
	  ld="$$ld -X $$p.k8sVersionMajor=1 -X $$p.k8sVersionMinor=$$kminor"; done; \
	cd $(HELM_DIR) && GOBIN=$(HELM_DIR) GOFLAGS=-mod=mod GOWORK=off CGO_ENABLED=0 \
	  $(GO) install -trimpath -ldflags "$$ld" helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

.PHONY: helm
helm: $(HELM) ## build the pinned Helm from the Go module proxy (cached)

.PHONY: helm-lint
helm-lint: $(HELM) ## helm lint + helm template of the chart (every values set in chart/testdata)
	@chart/lint.sh $(HELM) $(CHART)
