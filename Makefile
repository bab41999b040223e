# Weather Proxy Fleet — developer entry points. `make help` lists them.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON_SYSTEM ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
# pyproject.toml's version, the one source (weather_proxy/version.py reads it at run time).
VERSION ?= $(shell $(PYTHON_SYSTEM) -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
# Where the project's images live: `make push` pushes there as $(REGISTRY)/{proxy,operator}:$(TAG), `make
# release` points install.yaml there, the chart's image.registry is the same value.
REGISTRY ?= ghcr.io/weather-proxy
TAG ?= $(VERSION)
# What a real node and the local image builds need from Debian (see devcluster/node.py, devcluster/images.py).
NODE_PACKAGES := containerd runc containernetworking-plugins iptables conntrack socat ipset buildah mmdebstrap gcc libc6-dev

##@ General

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} \
	  /^[a-zA-Z_-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } \
	  /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

.PHONY: print-version
print-version: ## Print the project's version (pyproject.toml)
	@echo $(VERSION)

##@ Setup

$(VENV)/.installed: pyproject.toml constraints.txt
	@echo ">> creating virtualenv $(VENV) and installing the project with [dev] extras (versions: constraints.txt)"
	@test -x $(PY) || $(PYTHON_SYSTEM) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	@touch $@

# constraints.txt: pip-compile of every extra on this machine's Python (3.11, the images' too) and
# platform (Linux). The images, `make install` and CI install with it; the project itself, pip and
# setuptools stay out of it.
PIP_COMPILE = CUSTOM_COMPILE_COMMAND="make lock" $(VENV)/bin/pip-compile --quiet --all-extras \
  --strip-extras --no-emit-find-links --annotation-style=line --unsafe-package weather-proxy-fleet \
  --unsafe-package pip --unsafe-package setuptools --output-file constraints.txt pyproject.toml

.PHONY: lock
lock: $(VENV)/.installed ## Update constraints.txt to a changed pyproject.toml (other pins stay)
	$(PIP_COMPILE)

.PHONY: lock-upgrade
lock-upgrade: $(VENV)/.installed ## Re-resolve constraints.txt: the newest versions pyproject.toml allows
	$(PIP_COMPILE) --upgrade

.PHONY: install
install: $(VENV)/.installed system-packages kubectl sdk-deps ## Virtualenv with every extra, Debian packages (redis-server, postgresql, lua5.4, nodejs, prometheus, buildah), kubectl, node packages

# kubectl, when the machine has none: built from its Go modules (hack/tools/kubectl, the control
# plane's version) into ~/.cache, installed as /usr/local/bin/kubectl.
KUBECTL_VERSION := $(shell awk '$$1=="k8s.io/kubectl" {print $$2; exit}' hack/tools/kubectl/go.mod)
KUBECTL_K8S := $(subst v0.,v1.,$(KUBECTL_VERSION))
KUBECTL_BUILT := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/weather-proxy-fleet/tools/kubectl-$(KUBECTL_K8S)/kubectl
KUBECTL_LDFLAGS := -s -w $(foreach pkg,k8s.io/component-base/version k8s.io/client-go/pkg/version,\
  -X $(pkg).gitVersion=$(KUBECTL_K8S) -X $(pkg).gitMajor=1 -X $(pkg).gitMinor=$(word 2,$(subst ., ,$(KUBECTL_K8S))) \
  -X $(pkg).gitTreeState=clean)

.PHONY: kubectl
kubectl: ## Install kubectl (built from its Go modules) unless one is on PATH
	@command -v kubectl >/dev/null || { \
	  test -x $(KUBECTL_BUILT) || { echo ">> go build kubectl $(KUBECTL_K8S) (hack/tools/kubectl)"; \
	    cd hack/tools/kubectl && CGO_ENABLED=0 go build -trimpath -ldflags "$(KUBECTL_LDFLAGS)" -o $(KUBECTL_BUILT) .; }; \
	  echo ">> installing $(KUBECTL_BUILT) as /usr/local/bin/kubectl"; \
	  $$( [ "$$(id -u)" -eq 0 ] || echo sudo ) install -m 0755 $(KUBECTL_BUILT) /usr/local/bin/kubectl; }

.PHONY: system-packages
system-packages: ## Install missing Debian packages the tests need
	@bash hack/system-packages.sh redis-server postgresql lua5.4 nodejs npm prometheus buildah

##@ Development

.PHONY: lint
lint: $(VENV)/.installed sdk-lint workflow-lint chart-lint ## ruff (lint + format check), mypy --strict, bandit, hadolint; tsc and go vet of the SDKs; actionlint; helm lint
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/bandit -q -c pyproject.toml -r proxy operator
	$(VENV)/bin/hadolint Dockerfile.proxy Dockerfile.operator e2e/Dockerfile.emulator

ACTIONLINT_VERSION ?= v1.7.12
ACTIONLINT := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/weather-proxy-fleet/tools/actionlint-$(ACTIONLINT_VERSION)/actionlint

.PHONY: workflow-lint
workflow-lint: ## actionlint (built from its Go module) with shellcheck on .github/workflows/
	@bash hack/system-packages.sh shellcheck
	@command -v shellcheck >/dev/null  # without it actionlint skips the run: scripts silently
	@test -x $(ACTIONLINT) || { echo ">> go install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)"; \
	  GOBIN=$(dir $(ACTIONLINT)) go install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION); }
	$(ACTIONLINT)

# The Argo CD health scripts' gopher-lua runner (tests/unit/delivery/lua.py): a local Go module,
# cached by the digest of its sources (the tests compute the same key).
LUAHEALTH_SOURCES := hack/luahealth/go.mod hack/luahealth/go.sum hack/luahealth/main.go
LUAHEALTH_KEY = $(shell cat $(LUAHEALTH_SOURCES) | sha256sum | cut -c1-12)
LUAHEALTH = $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/weather-proxy-fleet/tools/luahealth-$(LUAHEALTH_KEY)/luahealth

.PHONY: luahealth
luahealth: ## Build hack/luahealth (gopher-lua, what Argo CD runs health scripts with), cached under ~/.cache
	@test -x $(LUAHEALTH) || { echo ">> go build hack/luahealth"; \
	  cd hack/luahealth && CGO_ENABLED=0 go build -mod=readonly -trimpath -o $(LUAHEALTH) .; }

.PHONY: fmt
fmt: $(VENV)/.installed ## Format and auto-fix
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

.PHONY: crds
crds: $(VENV)/.installed ## Regenerate crds/, docs/api-reference.md, docs/config-reference.md from the models (and the chart's copies)
	$(PY) hack/gen_crds.py
	@$(MAKE) --no-print-directory chart-crds

.PHONY: golden
golden: $(VENV)/.installed ## Refresh the renderers' golden files
	UPDATE_GOLDEN=1 $(PY) -m pytest -q tests/unit/operator/render

.PHONY: manifests
manifests: ## Build every kustomization (no cluster needed)
	@for k in $$(find manifests crds -name kustomization.yaml -printf '%h\n' | sort); do \
	  echo ">> kubectl kustomize $$k"; kubectl kustomize "$$k" >/dev/null; done

.PHONY: dev
dev: install controlplane-build ## Local stack: control plane, redis, operator, sample fleet, proxy (Ctrl-C stops). ARGS=--offline
	$(PY) -m hack.dev $(ARGS)

##@ Test

# The suite waits on real servers more than it computes: TEST_WORKERS pytest-xdist workers keep
# both cores busy. --dist loadscope, refined in tests/conftest.py, keeps each test module, and
# every test of the control plane, on one worker: one kube-apiserver starts, module fixtures once.
TEST_WORKERS ?= 4

.PHONY: test
test: install controlplane-build helm luahealth ## Unit + integration tests (no e2e), with the coverage floor; TEST_WORKERS=4
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadscope --cov --cov-report=term $(PYTEST_ARGS)

.PHONY: test-unit
test-unit: $(VENV)/.installed luahealth ## Unit tests only (fast, no services)
	$(PY) -m pytest tests/unit -m "not controlplane" $(PYTEST_ARGS)

MINIMUMS ?= .minimums

.PHONY: test-minimums
test-minimums: ## Unit tests on the lowest versions pyproject.toml allows (fresh venv in .minimums/, wheels only)
	$(PYTHON_SYSTEM) -m hack.dependencies minimums --output $(MINIMUMS)/constraints-min.txt
	rm -rf $(MINIMUMS)/venv
	$(PYTHON_SYSTEM) -m venv $(MINIMUMS)/venv
	$(MINIMUMS)/venv/bin/python -m pip install -q --upgrade pip
	$(MINIMUMS)/venv/bin/python -m pip install -q --only-binary=:all: -c $(MINIMUMS)/constraints-min.txt -e '.[dev]'
	$(MINIMUMS)/venv/bin/python -m pytest tests/unit -m "not controlplane" -p no:cacheprovider $(PYTEST_ARGS)

.PHONY: test-integration
test-integration: install controlplane-build helm ## Integration tests (real redis-server, kube-apiserver)
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)

.PHONY: e2e
e2e: install controlplane-build node-packages images helm ## e2e on kind (with a container engine) or on a real local node (root); never skips in CI
	$(PY) -m pytest e2e --with-e2e $(PYTEST_ARGS)

.PHONY: bench
bench: install ## Benchmarks (wrk on loopback); prints the figures
	@bash hack/system-packages.sh wrk postgresql nginx
	bench/run.sh

##@ Client SDKs and Postman (sdk/python, sdk/typescript, sdk/go, postman/)

NODE_PACKAGE_DIRS := sdk/typescript postman

.PHONY: sdk-deps
sdk-deps: $(NODE_PACKAGE_DIRS:%=%/node_modules/.package-lock.json) ## Node packages of the TypeScript SDK and the Postman tooling (npm ci, from the lockfiles)

$(NODE_PACKAGE_DIRS:%=%/node_modules/.package-lock.json): %/node_modules/.package-lock.json: %/package-lock.json
	@command -v npm >/dev/null || bash hack/system-packages.sh nodejs npm
	@echo ">> npm ci in $*"
	@cd $* && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

.PHONY: sdk-test
sdk-test: $(VENV)/.installed sdk-deps ## The three SDKs against real proxies (one with its history in PostgreSQL), their OpenAPI contract, and the Postman collection (newman)
	@bash hack/system-packages.sh postgresql
	$(PY) -m pytest tests/integration/sdk tests/unit/sdk tests/unit/delivery/test_sdk_versions.py $(PYTEST_ARGS)

.PHONY: sdk-lint
sdk-lint: sdk-deps ## tsc --noEmit (TypeScript SDK); gofmt and go vet (Go SDK, hack/luahealth)
	cd sdk/typescript && npm run --silent lint
	cd sdk/go && test -z "$$(gofmt -l .)" && go vet ./...
	cd tests/integration/sdk/contract_drivers/go && test -z "$$(gofmt -l .)" && GOTOOLCHAIN=local go vet ./...
	cd hack/luahealth && test -z "$$(gofmt -l .)" && go vet ./...

.PHONY: postman
postman: $(VENV)/.installed postman/node_modules/.package-lock.json ## Regenerate the Postman collection from the proxy's OpenAPI document
	$(PY) postman/build.py

##@ Helm chart and release bundle (charts/weather-operator, dist/)

HELM_VERSION ?= v3.22.0
# helm template and lint assume the Kubernetes version helm was built for: the control plane's
# (hack/controlplane/go.mod), the chart's minimum too.
K8S_MINOR := $(shell awk '$$1=="k8s.io/kubernetes" {split($$2, v, "."); print v[2]; exit}' hack/controlplane/go.mod)
HELM := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/weather-proxy-fleet/tools/helm-$(HELM_VERSION)-k8s1.$(K8S_MINOR)/helm
HELM_LDFLAGS := -s -w -X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION) \
  $(foreach pkg,chartutil lint/rules,-X helm.sh/helm/v3/pkg/$(pkg).k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/$(pkg).k8sVersionMinor=$(K8S_MINOR))
CHART := charts/weather-operator
# The chart's crds/ are copies (one source: crds/ from the models, Kopf's peering CRDs from
# manifests/base); a test checks they are identical.
CHART_CRDS := crds/weatherproxy.dev_weatherproxies.yaml crds/weatherproxy.dev_apikeys.yaml \
  manifests/base/kopf.dev_clusterkopfpeerings.yaml manifests/base/kopf.dev_kopfpeerings.yaml

.PHONY: helm
helm: ## Build helm from its Go module (helm.sh/helm/v3), cached under ~/.cache
	@test -x $(HELM) || { echo ">> go install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)"; \
	  GOBIN=$(dir $(HELM)) CGO_ENABLED=0 go install -ldflags "$(HELM_LDFLAGS)" helm.sh/helm/v3/cmd/helm@$(HELM_VERSION); }

.PHONY: chart-crds
chart-crds: ## Copy the CRDs into the chart's crds/ (make crds runs it)
	cp $(CHART_CRDS) $(CHART)/crds/

.PHONY: chart-lint
chart-lint: helm ## helm lint --strict of the chart, default values and every optional part on
	$(HELM) lint --strict $(CHART)
	$(HELM) lint --strict $(CHART) --set metrics.enabled=true,metrics.serviceMonitor.enabled=true,watchNamespace=weather

DIST ?= dist

.PHONY: release
release: helm ## dist/install.yaml (kustomize build of manifests/base; images from REGISTRY, TAG) and dist/weather-operator-$(VERSION).tgz
	rm -rf $(DIST)
	mkdir -p $(DIST)
	$(PYTHON_SYSTEM) hack/install_yaml.py --registry $(REGISTRY) --tag $(TAG) > $(DIST)/install.yaml
	$(HELM) package $(CHART) --version $(VERSION) --app-version $(VERSION) --destination $(DIST)
	@ls -l $(DIST)

##@ Control plane (etcd + kube-apiserver + kube-controller-manager, built from Go modules)

.PHONY: controlplane-build
controlplane-build: ## Build (or reuse cached) control-plane binaries
	@bash hack/controlplane/build.sh

.PHONY: controlplane
controlplane: install controlplane-build ## Start a local control plane in .controlplane/ (prints KUBECONFIG)
	$(PY) -m devcluster up

.PHONY: controlplane-down
controlplane-down: ## Stop the local control plane
	$(PY) -m devcluster down

##@ Real-node cluster (control plane + containerd, kubelet, kube-proxy, kube-router, CoreDNS, metrics-server; root)

.PHONY: cluster
cluster: install controlplane-build node-packages ## Start a single-node cluster whose pods really run, in .cluster/ (prints KUBECONFIG)
	$(PY) -m devcluster up --real-node

.PHONY: cluster-down
cluster-down: ## Stop the real-node cluster: containers, network, mounts, processes
	$(PY) -m devcluster down --state-dir .cluster

.PHONY: node-packages
node-packages: ## Install the Debian packages a real node and the image builds need
	@bash hack/system-packages.sh $(NODE_PACKAGES)

##@ Images

.PHONY: images
images: $(VENV)/.installed node-packages ## Every image the local cluster runs, as OCI archives (buildah + mmdebstrap + Go, no registry; root)
	$(PY) -m devcluster.images build

.PHONY: push
push: $(VENV)/.installed node-packages ## buildah push of the proxy and operator images (make images) as REGISTRY/{proxy,operator}:TAG; `buildah login` first
	$(PY) -m devcluster.push --registry $(REGISTRY) --tag $(TAG)

.PHONY: images-docker
images-docker: ## Build the proxy and operator images with a Docker engine
	docker build -f Dockerfile.proxy -t $(REGISTRY)/proxy:$(VERSION) --build-arg VERSION=$(VERSION) .
	docker build -f Dockerfile.operator -t $(REGISTRY)/operator:$(VERSION) --build-arg VERSION=$(VERSION) .
