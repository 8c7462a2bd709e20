# mk/e2e.mk — the Helm chart, the container images, the kind cluster and `make e2e`.
#
#   make helm-lint          helm lint + helm template of chart/cnpg-mcp in every supported configuration
#   make images             our images (cnpg-mcp-server, mockauth0, mcp-auth-conformance) with the local Docker
#   make image-test         the suite's image runs: --list, and a short run with its Chromium against a local stack
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

# ---------------------------------------------------------------------------------------------------------
# Images: FROM scratch + one static binary + the CA bundle, non-root (images/<name>/Dockerfile); an image
# with images/<name>/base.sh builds FROM the base image that script prints (mcp-auth-conformance: Debian
# + Chromium from kind/offline's cached debootstrap builder).
BINARIES += tcp-forward
PKG_tcp-forward := ./e2e/cmd/tcp-forward
# Recursive (=) and used only in recipes: BINARIES is complete only once every mk/*.mk is read
# (mk/proxy.mk, included after this file, adds cnpg-mcp-server).
IMAGE_NAMES = $(filter $(BINARIES),cnpg-mcp-server mockauth0 mcp-auth-conformance tcp-forward)

.PHONY: docker
docker:
	@kind/ensure-docker.sh

.PHONY: images
images: docker ## build our images (cnpg-mcp-server, mockauth0, mcp-auth-conformance with Chromium)
	@$(MAKE) --no-print-directory $(addprefix $(BIN)/,$(IMAGE_NAMES))
	@for n in $(IMAGE_NAMES); do \
	  ctx=$(CACHE_DIR)/images/$$n; rm -rf $$ctx; mkdir -p $$ctx; \
	  cp $(BIN)/$$n $$ctx/$$n; cp /etc/ssl/certs/ca-certificates.crt $$ctx/; cp images/$$n/Dockerfile $$ctx/; \
	  base=""; if [ -x images/$$n/base.sh ]; then base=$$(DOCKER=$(DOCKER) images/$$n/base.sh) || exit 1; fi; \
	  DOCKER_BUILDKIT=0 $(DOCKER) build -q --build-arg VERSION=$(IMAGE_TAG) $${base:+--build-arg BASE=$$base} \
	    -t $(IMAGE_PREFIX)/$$n:$(IMAGE_TAG) $$ctx >$$ctx.log 2>&1 || { cat $$ctx.log; exit 1; }; \
	  printf '  %-44s %s\n' "$(IMAGE_PREFIX)/$$n:$(IMAGE_TAG)" "$$($(DOCKER) image inspect -f '{{.Size}}' $(IMAGE_PREFIX)/$$n:$(IMAGE_TAG) | awk '{printf "%.1f MB", $$1/1e6}')"; \
	done
	@for n in cnpg-mcp-server mockauth0 mcp-auth-conformance; do case " $(IMAGE_NAMES) " in *" $$n "*) ;; *) echo "  $$n: no binary target yet (BINARIES), image skipped";; esac; done

.PHONY: image-test
image-test: images ## the suite's image: --list, and a short run with its Chromium against a local stack (--network host)
	CNPG_MCP_IMAGE=$(IMAGE_PREFIX)/mcp-auth-conformance:$(IMAGE_TAG) DOCKER=$(DOCKER) $(GO) test -count=1 -v -timeout 15m \
	  -run '^TestImage$$' ./conformance/cmd/mcp-auth-conformance/

.PHONY: offline-images
offline-images: docker ## build every image of the offline cluster from Go modules + Debian (cached in CACHE_DIR)
	@kind/offline/build.sh

# The object store of the backup scenario (versitygw), built locally for online runs too.
.PHONY: objectstore-image
objectstore-image: docker ## build the e2e object store image (versitygw from its Go module; cached)
	@kind/offline/build.sh --objectstore

.PHONY: offline-images-check
offline-images-check: ## exit 0 when every offline image is already built (then `make e2e OFFLINE=1` builds nothing)
	@kind/offline/build.sh --check

# ---------------------------------------------------------------------------------------------------------
# make e2e [OFFLINE=1] [E2E_REUSE=1] [E2E_KEEP=1] [E2E_PROCS=5] [E2E_LABELS='tools || backups'] [GINKGO_ARGS=...]
# The suite runs under the Ginkgo CLI (built from the version in go.mod into $(CACHE_DIR)/tools) in
# E2E_PROCS parallel processes: process 1 creates the cluster, CloudNativePG and the mock; the
# top-level containers then spread over the processes, longest first (SpecPriority). E2E_PROCS=1 runs
# them one after another. E2E_LABELS is a Ginkgo label filter (labels: cnpg, backups, chart,
# conformance, tools, chaos, impersonate), passed quoted: GINKGO_ARGS (Ginkgo CLI flags) goes to the
# shell as words, so `||` or `&&` in it would be read by the shell.
E2E_TIMEOUT ?= 75m
E2E_PROCS   ?= 5
E2E_LABELS  ?=
GINKGO_ARGS ?=
GINKGO_VERSION = $(shell sed -n 's/^[[:space:]]*github.com\/onsi\/ginkgo\/v2 \(v[^ ]*\).*/\1/p' go.mod)
GINKGO_DIR     = $(CACHE_DIR)/tools/ginkgo-$(GINKGO_VERSION)
GINKGO         = $(GINKGO_DIR)/ginkgo

$(CACHE_DIR)/tools/ginkgo-%/ginkgo: go.mod
	@mkdir -p $(@D)
	@echo "building the Ginkgo CLI $* (the version in go.mod) into $(@D)"
	@CGO_ENABLED=0 $(GO) build -trimpath -o $@ github.com/onsi/ginkgo/v2/ginkgo

.PHONY: ginkgo
ginkgo: $(GINKGO) ## build the Ginkgo CLI of go.mod's version (cached)

.PHONY: e2e
e2e: deps $(HELM) $(GINKGO) images $(if $(OFFLINE),offline-images,objectstore-image) ## kind + CloudNativePG + chart + conformance + tools (OFFLINE=1: no registry)
	@mkdir -p $(E2E_REPORT)
	@manifest=""; if [ -z "$(OFFLINE)" ]; then \
	  d=$$($(GO) mod download -json github.com/cloudnative-pg/cloudnative-pg@v$(CNPG_VERSION) | sed -n 's/.*"Dir": "\(.*\)".*/\1/p'); \
	  manifest=$$d/releases/cnpg-$(CNPG_VERSION).yaml; fi; \
	pd=$$($(GO) mod download -json github.com/cloudnative-pg/plugin-barman-cloud@$(BARMAN_CLOUD_PLUGIN_VERSION) | sed -n 's/.*"Dir": "\(.*\)".*/\1/p'); \
	objstore=$$(kind/offline/build.sh --list | sed -n 's/^OBJSTORE_IMAGE=//p'); \
	start=$$(date +%s); \
	E2E_OFFLINE=$(if $(OFFLINE),1,) E2E_CNPG_MANIFEST=$$manifest E2E_CLUSTER=$(E2E_CLUSTER) E2E_REPORT=$(E2E_REPORT) \
	HELM=$(HELM) E2E_SERVER_IMAGE=$(IMAGE_PREFIX)/cnpg-mcp-server:$(IMAGE_TAG) E2E_MOCK_IMAGE=$(IMAGE_PREFIX)/mockauth0:$(IMAGE_TAG) \
	E2E_FORWARD_IMAGE=$(IMAGE_PREFIX)/tcp-forward:$(IMAGE_TAG) \
	E2E_PLUGIN_MANIFEST=$$pd/manifest.yaml E2E_OBJSTORE_IMAGE=$$objstore \
	$(GINKGO) run --tags=e2e $(if $(filter-out 1,$(E2E_PROCS)),-p --procs=$(E2E_PROCS)) --timeout=$(E2E_TIMEOUT) -v \
	  --output-dir=$(E2E_REPORT) --json-report=e2e.json --junit-report=e2e-junit.xml \
	  $(if $(E2E_LABELS),'--label-filter=$(E2E_LABELS)') $(GINKGO_ARGS) ./e2e/; \
	rc=$$?; echo "e2e: exit $$rc after $$(( $$(date +%s) - start ))s (reports in $(E2E_REPORT))"; exit $$rc

.PHONY: e2e-down
e2e-down: ## delete the e2e kind cluster and the containers beside it
	-@$(DOCKER) rm -f $(E2E_CLUSTER)-mockauth0 >/dev/null 2>&1
	@$(GO) run ./e2e/cmd/e2e-down --name $(E2E_CLUSTER)
