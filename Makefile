# shoal: build, run, test and benchmark. Every target works on a fresh Debian 12
# machine as root; `deps` installs what the tests need with apt-get.

GO        ?= go
VERSION   ?= 0.1.0-dev
BIN       := bin/shoal
SOCKET    ?= /run/shoal.sock
DATA_ROOT ?= /var/lib/shoal
# `shoal version` shows the commit and when it was built; SOURCE_DATE_EPOCH (seconds)
# pins the date for a reproducible build.
COMMIT    ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)$(shell git diff --quiet HEAD 2>/dev/null || echo -dirty)
BUILD_DATE ?= $(shell date -u $(if $(SOURCE_DATE_EPOCH),-d @$(SOURCE_DATE_EPOCH)) +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS   := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.buildDate=$(BUILD_DATE) -extldflags "-static"
# seccomp: runc's libcontainer filters syscalls only when built with this tag,
# cgo and libseccomp (linked statically from libseccomp-dev's libseccomp.a).
GOTAGS    := netgo,osusergo,seccomp
# procps: the daemon runs ps for `docker top`.
BUILD_DEBS := gcc libc6-dev pkgconf libseccomp-dev procps
# chromium: the dashboard's end-to-end test drives it headless (chromedp).
# $(call dpkg_installed,p) succeeds when package p is installed (for some architecture: with
# dpkg's multiarch, `dpkg -s libseccomp-dev` is ambiguous once :arm64 is there too).
dpkg_installed = dpkg-query -W -f='$${Status}\n' $(1) 2>/dev/null | grep -q 'ok installed'
TEST_DEBS := busybox-static docker-registry docker.io nftables iproute2 util-linux ca-certificates chromium

.PHONY: all build run test unit e2e fuzz torture deps builddeps dist distdeps dist-check bench conformance-record conformance clean

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
	@missing=""; for p in $(BUILD_DEBS); do $(call dpkg_installed,$$p) || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

# Installs the Debian packages the tests use, unless they are all there already.
deps:
	@missing=""; for p in $(TEST_DEBS); do $(call dpkg_installed,$$p) || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi
	@command -v docker >/dev/null || { echo "the docker CLI is needed on PATH"; exit 1; }

# Where tests keep what they leave for a person to look at (the dashboard's
# screenshot): $(TEST_OUT)/_artifacts/<n>/, which go test names in its output.
TEST_OUT ?= /tmp/shoal-test-out

# Unit tests of every package, the end-to-end tests against the static binary and
# the short torture test, then each fuzz target for a few seconds (their seeds under
# testdata/fuzz run with the unit tests too).
test: builddeps deps build
	@mkdir -p $(TEST_OUT)
	SHOAL_BINARY=$(CURDIR)/$(BIN) $(GO) test -tags $(GOTAGS) -count=1 -timeout 20m -artifacts -outputdir $(TEST_OUT) ./...
	$(MAKE) fuzz

# Each fuzz target (package:name[:inputs]) runs a count of inputs beyond its
# committed corpus, a few seconds' worth (FUZZTIME, or its own count where one input
# costs more): a count, not a duration, which trips Go's fuzz coordinator race on a
# busy machine ("context deadline exceeded" with no failing input, go.dev/issue/75804).
FUZZ := engineapi:FuzzParseFilters engineapi:FuzzSecretCreate engineapi:FuzzConfigCreate \
	cluster/store:FuzzUnwrapDataKeys cluster/autolock:FuzzUnlock \
	runtime/image:FuzzParsePeerPath runtime/image:FuzzLoad:50 runtime/container:FuzzExtract:2000 \
	cluster:FuzzServiceSpec cluster/store:FuzzApplyCommand cluster/scheduler:FuzzConstraint \
	cluster/agent:FuzzExpandTemplate compose:FuzzLoad:300 netplane/dns:FuzzAnswer
FUZZTIME ?= 10000x
fuzz: builddeps
	@for t in $(FUZZ); do \
		pkg=$${t%%:*}; rest=$${t#*:}; fn=$${rest%%:*}; n=$${rest#*:}; \
		[ "$$n" = "$$rest" ] && n=$(FUZZTIME) || n=$${n}x; \
		echo "fuzz ./$$pkg $$fn ($$n)"; \
		$(GO) test -tags $(GOTAGS) -run '^$$' -fuzz "^$$fn\$$" -fuzztime $$n ./$$pkg/ || exit 1; \
	done

unit: builddeps deps
	$(GO) test -tags $(GOTAGS) -count=1 $$($(GO) list -tags $(GOTAGS) ./... | grep -v /testenv/e2e)

e2e: builddeps deps build
	@mkdir -p $(TEST_OUT)
	SHOAL_BINARY=$(CURDIR)/$(BIN) $(GO) test -tags $(GOTAGS) -count=1 -timeout 20m -artifacts -outputdir $(TEST_OUT) -v ./testenv/e2e/

# The crash-consistency torture test, long form: TORTURE_ROUNDS rounds of
# concurrent clients and a SIGKILL (`make test` runs 20). SHOAL_TORTURE_SEED=N
# replays the seed a run printed.
TORTURE_ROUNDS ?= 500
torture: builddeps deps build
	SHOAL_BINARY=$(CURDIR)/$(BIN) SHOAL_TORTURE_ROUNDS=$(TORTURE_ROUNDS) $(GO) test -tags $(GOTAGS) -count=1 -timeout 0 -v -run 'TestTorture$$' ./testenv/torture/

# Static binaries for linux/amd64, linux/arm64 and linux/arm/v7 in dist/, each with
# cgo (libcontainer's nsenter) and libseccomp linked statically: Debian's cross
# compilers and its libseccomp-dev for arm64 and armhf (dpkg multiarch), installed
# by distdeps (on an amd64 Debian 12 machine, as the other targets). dist-check
# makes sure with file(1) that each is static and for its architecture.
DIST_ARCHS := amd64 arm64 armv7
DIST_amd64 := GOARCH=amd64 CC=x86_64-linux-gnu-gcc PKG_CONFIG_LIBDIR=/usr/lib/x86_64-linux-gnu/pkgconfig
DIST_arm64 := GOARCH=arm64 CC=aarch64-linux-gnu-gcc PKG_CONFIG_LIBDIR=/usr/lib/aarch64-linux-gnu/pkgconfig
DIST_armv7 := GOARCH=arm GOARM=7 CC=arm-linux-gnueabihf-gcc PKG_CONFIG_LIBDIR=/usr/lib/arm-linux-gnueabihf/pkgconfig
# What file(1) says of each architecture's ELF header.
FILE_amd64 := x86-64
FILE_arm64 := ARM aarch64
FILE_armv7 := ARM, EABI5
DIST_DEBS  := gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf libseccomp-dev:arm64 libseccomp-dev:armhf file

dist: builddeps distdeps
	@mkdir -p dist
	@for a in $(DIST_ARCHS); do \
		case $$a in amd64) env="$(DIST_amd64)";; arm64) env="$(DIST_arm64)";; armv7) env="$(DIST_armv7)";; esac; \
		echo "dist/shoal-linux-$$a"; \
		env CGO_ENABLED=1 GOOS=linux $$env $(GO) build -buildvcs=auto -trimpath -tags $(GOTAGS) -ldflags '$(LDFLAGS)' -o dist/shoal-linux-$$a . || exit 1; \
	done
	@$(MAKE) --no-print-directory dist-check

# Each binary is a static ELF for its architecture, built with cgo and the seccomp
# tag (so with Docker's default filter); the host's one runs and names the commit
# it was built from.
dist-check:
	@for a in $(DIST_ARCHS); do \
		case $$a in amd64) want="$(FILE_amd64)";; arm64) want="$(FILE_arm64)";; armv7) want="$(FILE_armv7)";; esac; \
		out=$$(file -b dist/shoal-linux-$$a) || exit 1; \
		echo "dist/shoal-linux-$$a: $$out"; \
		case "$$out" in *"$$want"*) ;; *) echo "dist/shoal-linux-$$a is not for $$want"; exit 1;; esac; \
		case "$$out" in *"statically linked"*) ;; *) echo "dist/shoal-linux-$$a is not statically linked"; exit 1;; esac; \
		$(GO) version -m dist/shoal-linux-$$a | grep -q "CGO_ENABLED=1" && $(GO) version -m dist/shoal-linux-$$a | grep -q -- "-tags=.*seccomp" \
			|| { echo "dist/shoal-linux-$$a is not built with cgo and the seccomp tag"; exit 1; }; \
	done
	@host=$$(dpkg --print-architecture | sed 's/armhf/armv7/'); \
	v=$$(dist/shoal-linux-$$host version) && echo "dist/shoal-linux-$$host version: $$v" && \
	case "$$v" in *"commit $(COMMIT),"*) ;; *) echo "it does not name commit $(COMMIT)"; exit 1;; esac

# Adds dpkg's arm64 and armhf architectures and installs the cross compilers and
# those architectures' libseccomp-dev, unless they are all there already.
distdeps:
	@missing=""; for p in $(DIST_DEBS); do $(call dpkg_installed,$$p) || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		for a in arm64 armhf; do dpkg --print-foreign-architectures | grep -qx $$a || dpkg --add-architecture $$a; done; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

# A busybox image (docker-save archive) built from Debian's busybox-static, for
# `docker load -i busybox.tar` on a machine with no registry.
busybox.tar:
	@dpkg -s busybox-static >/dev/null 2>&1 || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q busybox-static; }
	bash testenv/bench/mkimage.sh $@ busybox:latest

# Runs the conformance corpus (testenv/conformance) against Debian's dockerd 20.10 in
# swarm mode, in namespaces of its own, with the docker CLI 28 on PATH and, for the
# scenarios of its @cli20.10 variant, docker.io's CLI 20.10 (/usr/bin/docker), and
# rewrites its recorded transcripts; `make test` replays them against shoal. See
# docs/conformance.md.
conformance-record: builddeps deps
	@test -x /usr/bin/docker || { echo "conformance-record: no docker CLI 20.10 at /usr/bin/docker (Debian's docker.io)"; exit 1; }
	CONFORMANCE_RECORD=1 $(GO) test -tags $(GOTAGS) -count=1 -timeout 20m -run 'TestCorpus|TestMultiNodeCorpus' -v ./testenv/conformance/

# Runs moby's own integration tests (integration/service, secret, config of moby
# v28.2.2, from the Go module proxy) against shoal, in a network namespace of their
# own, with Debian's dockerd as the "main" daemon; logs and a summary go to
# MOBYSUITE_OUT. See docs/conformance.md.
MOBYSUITE_OUT ?= /tmp/shoal-mobysuite
conformance: builddeps deps build
	SHOAL_MOBYSUITE=1 MOBYSUITE_OUT=$(MOBYSUITE_OUT) SHOAL_BINARY=$(CURDIR)/$(BIN) $(GO) test -tags $(GOTAGS) -count=1 -timeout 0 -v -run TestMobySuite ./testenv/mobysuite/

# Side-by-side with Docker Engine's swarm mode; writes docs/benchmarks.md.
bench:
	bash testenv/bench/run.sh

clean:
	rm -rf bin dist
