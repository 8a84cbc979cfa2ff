# syscage — see README.md. Every target works on a fresh Debian 12 machine as root
# after `make deps`.

GO       ?= go
BIN      := bin/syscage
GOFLAGS  := -trimpath
LDFLAGS  := -s -w -X main.version=$(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
DEBS     := runc podman containerd busybox-static strace bpftool clang llvm libbpf-dev linux-libc-dev gcc gcc-multilib

.PHONY: all build deps generate check-generated test test-short demo bench clean

all: build

build:
	CGO_ENABLED=0 $(GO) build $(GOFLAGS) -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/syscage

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

check-generated: generate
	@git diff --exit-code --stat -- bpf profile profiles || \
		{ echo "generated files are not up to date, run 'make generate'"; exit 1; }

# Privileged tests skip without root; with SYSCAGE_TEST_PRIVILEGED=1 (as in CI) they
# fail instead.
test:
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...

test-short:
	$(GO) test -short ./...

demo: deps build
	@echo '--- recording: tar -cf /dev/null -C /etc .'
	./$(BIN) record -o bin/demo.json -- tar -cf /dev/null -C /etc .
	@cat bin/demo.json

bench: build
	$(GO) test -run '^$$' -bench . -benchtime 1x -count 1 ./bpf/ ./tests/

clean:
	rm -rf bin
