# syscage — see README.md. Every target works on a fresh Debian 12 machine as root
# after `make deps`.

GO       ?= go
BIN      := bin/syscage
GOFLAGS  := -trimpath
LDFLAGS  := -s -w -X main.version=$(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
DEBS     := runc podman containerd docker.io busybox-static strace bpftool clang llvm libbpf-dev linux-libc-dev gcc gcc-multilib linux-libc-dev-armhf-cross qemu-user-static containernetworking-plugins etcd-server iptables openssl iproute2

.PHONY: all build deps generate demo-profiles check-generated test test-short test-arm64 demo bench bench-k8s clean image k8s-build

all: build

build:
	CGO_ENABLED=0 $(GO) build $(GOFLAGS) -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/syscage
	CGO_ENABLED=0 $(GO) build $(GOFLAGS) -ldflags '$(LDFLAGS)' -o bin/syscage-hook ./cmd/syscage-hook
	CGO_ENABLED=0 $(GO) build $(GOFLAGS) -ldflags '$(LDFLAGS)' -o bin/syscage-recorder ./cmd/syscage-recorder
	CGO_ENABLED=0 $(GO) build $(GOFLAGS) -ldflags '$(LDFLAGS)' -o bin/kubectl-syscage ./cmd/kubectl-syscage
	CGO_ENABLED=0 $(GO) build $(GOFLAGS) -ldflags '$(LDFLAGS)' -o bin/syscage-agent ./cmd/syscage-agent

# Debian packages for the tests (runtimes, compilers for the test workload) and
# for `make generate` (clang, libbpf headers). Running syscage needs none of them.
deps:
	@missing=$$(for p in $(DEBS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# BPF objects (bpf2go + clang) and syscall tables (from golang.org/x/sys and the
# kernel's x32 header); both are committed.
generate:
	$(GO) generate ./...

# Profiles of the demo workloads, recorded with the real kernel (root), on a fixed
# tree, in a clean environment: byte-identical run after run on the same system.
DEMO_TREE := bin/demo-tree
demo-profiles: build
	rm -rf $(DEMO_TREE) && mkdir -p $(DEMO_TREE)/sub && echo a > $(DEMO_TREE)/a.txt && \
		echo b > $(DEMO_TREE)/sub/b.txt && ln -s a.txt $(DEMO_TREE)/link
	env -i PATH=/usr/bin:/bin LANG=C ./$(BIN) record -q -o profiles/demo-tar.json -- tar -cf /dev/null -C $(DEMO_TREE) .
	env -i PATH=/usr/bin:/bin LANG=C ./$(BIN) record -q -o profiles/demo-sh.json -- sh -c 'ls -la $(DEMO_TREE) >/dev/null; cat $(DEMO_TREE)/a.txt >/dev/null'

check-generated: generate
	@if [ "$$(id -u)" = 0 ]; then $(MAKE) --no-print-directory demo-profiles; \
		else echo "not root: the demo profiles were not re-recorded"; fi
	@git diff --exit-code --stat -- bpf profile profiles || \
		{ echo "generated files are not up to date, run 'make generate' (and, as root, 'make demo-profiles')"; exit 1; }

# Privileged tests skip without root; with SYSCAGE_TEST_PRIVILEGED=1 (as in CI) they
# fail instead. The Kubernetes test runs last, alone: it brings a cluster up
# (tests/k8s/cluster/up.sh; building it the first time takes ~15 min) and down.
test:
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m $$($(GO) list ./... | grep -v -e /tests/k8s -e /tests/fleet)
	$(MAKE) --no-print-directory k8s-build
	$(GO) test -count=1 -timeout 10m ./tests/fleet/
	$(GO) test -count=1 -timeout 40m -v ./tests/k8s/

# The cluster's Kubernetes binaries, built once per machine (~15 min cold on 2
# cores) into K8SE2E_DIR. Under a lock, so that CI can start it early in the
# background and `make test` waits for it instead of building it twice.
K8SE2E_DIR ?= /var/tmp/k8s-e2e
k8s-build:
	@mkdir -p $(K8SE2E_DIR)
	flock $(K8SE2E_DIR)/.build.lock sh -c 'test -x $(K8SE2E_DIR)/bin/kubelet || K8SE2E_DIR=$(K8SE2E_DIR) tests/k8s/cluster/up.sh build'

test-short:
	$(GO) test -short ./...

# The architecture-independent packages as real arm64 code, under qemu-user. BPF
# needs an arm64 kernel, which qemu-user does not give.
test-arm64:
	GOARCH=arm64 CGO_ENABLED=0 $(GO) vet ./...
	GOARCH=arm64 $(GO) test -short -count=1 -exec qemu-aarch64-static ./profile/... ./oci/... ./hooks ./hooks/agent ./hooks/kubeapi ./hooks/verify ./cmd/...

demo: deps build
	@echo '--- recording: tar -cf /dev/null -C /etc .'
	./$(BIN) record -o bin/demo.json -- tar -cf /dev/null -C /etc .
	@cat bin/demo.json
	@echo '--- enforcing it: the same command under its profile'
	./$(BIN) exec --profile bin/demo.json -- tar -cf /dev/null -C /etc . && echo 'tar ran under its profile'
	@echo '--- the same profile without getdents64: tar cannot list directories'
	grep -v '"getdents64",' bin/demo.json > bin/demo-strict.json
	./$(BIN) exec --profile bin/demo-strict.json -- tar -cf /dev/null -C /etc . || echo "tar failed under it (exit $$?)"
	@echo '--- and verify names what is missing, with the workload unharmed'
	./$(BIN) verify --profile bin/demo-strict.json -- tar -cf /dev/null -C /etc . || true

bench: build
	$(GO) test -run '^$$' -bench . -benchtime 1x -count 1 ./bpf/ ./tests/ ./tests/registry/

# Fleets of FLEET_NODES simulated nodes (the agent's code, a simulated recorder)
# against a real kube-apiserver and etcd, recorded with `kubectl syscage record`:
# API writes per node, the largest object, etcd's size, collection + merge time.
# FLEET_PROFILE=FILE also writes the API server's CPU profile to FILE-NODES.pprof;
# FLEET_STOPPROFILE=FILE the agents' from just before the stop to FILE-NODES.pprof,
# and the API server's for 16 s from then to FILE-NODES-apiserver.pprof.
# BenchmarkAPIWrites: what one write costs the API server and etcd, by kind.
FLEET_NODES    ?= 100,1000,5000
FLEET_DURATION ?= 60s
FLEET_PROFILE  ?=
FLEET_STOPPROFILE ?=
bench-k8s: k8s-build
	SYSCAGE_TEST_PRIVILEGED=1 $(GO) test -count=1 -timeout 180m -v -run '^TestFleet$$' -bench '^BenchmarkAPIWrites$$' -benchtime 1x ./tests/fleet/ \
		-args -fleet.nodes=$(FLEET_NODES) -fleet.duration=$(FLEET_DURATION) -fleet.apiprofile=$(FLEET_PROFILE) \
		-fleet.stopprofile=$(FLEET_STOPPROFILE)

# The node agent's image, for `kubectl syscage install --image`: built with podman
# and saved as bin/syscage-image.tar (load it, or push it to your registry).
IMAGE ?= localhost/syscage:$(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
image: build
	podman build -q -f Containerfile -t $(IMAGE) .
	rm -f bin/syscage-image.tar && podman save -q --format oci-archive -o bin/syscage-image.tar $(IMAGE)
	@echo "$(IMAGE) -> bin/syscage-image.tar"

clean:
	rm -rf bin
