# shoal: build, run, test and benchmark. Every target works on a fresh Debian 12
# machine as root; `deps` installs what the tests need with apt-get.

GO        ?= go
VERSION   ?= 0.1.0-dev
BIN       := bin/shoal
SOCKET    ?= /run/shoal.sock
DATA_ROOT ?= /var/lib/shoal
LDFLAGS   := -s -w -X main.version=$(VERSION) -extldflags "-static"
# seccomp: runc's libcontainer filters syscalls only when built with this tag,
# cgo and libseccomp (linked statically from libseccomp-dev's libseccomp.a).
GOTAGS    := netgo,osusergo,seccomp
# procps: the daemon runs ps for `docker top`.
BUILD_DEBS := gcc libc6-dev pkgconf libseccomp-dev procps
TEST_DEBS := busybox-static docker-registry docker.io nftables iproute2 util-linux ca-certificates

.PHONY: all build run test unit e2e torture fuzz deps builddeps bench clean

all: build

# One static binary: CGO for libcontainer's nsenter and libseccomp, linked statically.
build: builddeps
	CGO_ENABLED=1 $(GO) build -buildvcs=auto -tags $(GOTAGS) -ldflags '$(LDFLAGS)' -o $(BIN) .

# A single-node shoal on $(SOCKET), in the foreground (Ctrl-C stops the daemon;
# task containers keep running and are re-adopted on the next start).
run: build
	@echo "shoal: export DOCKER_HOST=unix://$(SOCKET)   then: docker swarm init"
	$(BIN) daemon -H unix://$(SOCKET) --data-root $(DATA_ROOT)

# Installs the Debian packages the build needs, unless they are all there already.
builddeps:
	@missing=""; for p in $(BUILD_DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

# Installs the Debian packages the tests use, unless they are all there already.
deps:
	@missing=""; for p in $(TEST_DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi
	@command -v docker >/dev/null || { echo "the docker CLI is needed on PATH"; exit 1; }

# Unit tests of every package, then the end-to-end tests against the static binary,
# then each fuzz target for a few seconds.
test: builddeps deps build
	SHOAL_BINARY=$(CURDIR)/$(BIN) $(GO) test -tags $(GOTAGS) -count=1 -timeout 20m ./...
	$(MAKE) fuzz

# Every fuzz target of the parsers that take outside input, FUZZTIME each (their
# committed seeds also run in every `go test`).
FUZZTIME ?= 3s
FUZZ_TARGETS := engineapi:FuzzParseFilters runtime/image:FuzzParsePeerPath runtime/image:FuzzLoad \
	runtime/container:FuzzExtract cluster:FuzzServiceSpec cluster/store:FuzzApplyCommand \
	cluster/scheduler:FuzzConstraint cluster/agent:FuzzExpandTemplate
fuzz: builddeps
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t#*:}; echo "fuzz ./$$pkg $$fn ($(FUZZTIME))"; \
		$(GO) test -tags $(GOTAGS) -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) ./$$pkg/; \
	done

# The crash-consistency torture test, long form: TORTURE_ROUNDS rounds of
# concurrent clients and a SIGKILL (`make test` runs 10). SHOAL_TORTURE_SEED=N
# replays the seed a run printed.
TORTURE_ROUNDS ?= 500
torture: builddeps deps build
	SHOAL_BINARY=$(CURDIR)/$(BIN) SHOAL_TORTURE_ROUNDS=$(TORTURE_ROUNDS) $(GO) test -tags $(GOTAGS) -count=1 -timeout 0 -v -run 'TestTorture$$' ./testenv/torture/

# Side-by-side with Docker Engine's swarm mode; writes docs/benchmarks.md.
bench:
	bash bench/run.sh

clean:
	rm -rf bin
