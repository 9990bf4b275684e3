# Bastion — `make help` lists the targets.
SHELL      := bash
GO         ?= go
GOBIN      := $(shell $(GO) env GOPATH)/bin
STATICCHECK := $(GOBIN)/staticcheck
FUZZTIME   ?= 30s
DEMO_DIR   ?= ./demo-data
export DEMO_DIR

.PHONY: help build deps test lint fuzz bench demo clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

build: ## build bin/bastion
	$(GO) build -o bin/bastion ./cmd/bastion

deps: ## install the real peers tests and the demo use (sshd, PostgreSQL, MariaDB, S3 server, …), idempotently
	@scripts/install-deps.sh

lint: deps ## gofmt, go vet and staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

test: lint ## lint, then every test with the race detector (real sshd, PostgreSQL, MariaDB, S3)
	$(GO) test -race -count=1 -timeout 15m ./...

fuzz: ## run every fuzz target for FUZZTIME each (default 30s)
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -timeout 0 -fuzzminimizetime 3s $$pkg; \
	  done; done

bench: build ## run the benchmarks in bench/ (results go to BENCHMARKS.md by hand)
	@scripts/bench.sh

demo: deps build ## run a local sandbox: demo users, real targets, Bastion (Ctrl-C stops it)
	bin/bastion demo --dir $(DEMO_DIR)

clean: ## remove build output and demo data
	rm -rf bin $(DEMO_DIR)
