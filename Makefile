# wherehouse — run `make` for the list of targets.
SHELL := bash
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
GO ?= go
DATA ?= ./data

.DEFAULT_GOAL := help

.PHONY: help
help: ## show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-z][a-z-]*:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: frontend
frontend: ## build the web app into frontend/dist (needs node and npm)
	@if [ -f frontend/package.json ]; then \
		if command -v npm >/dev/null; then \
			cd frontend && (npm ci --no-audit --no-fund || npm install --no-audit --no-fund) && npm run build; \
		else echo "npm not found: the map app is skipped (install Node.js to build it)"; fi; \
	fi

.PHONY: build
build: frontend ## build the web app, then bin/wherehouse
	@# The web app is embedded (tag webapp) only when it was built.
	tags=$$([ -f frontend/dist/index.html ] && echo webapp); \
	$(GO) build -trimpath -tags "$$tags" -ldflags "$(LDFLAGS)" -o bin/wherehouse ./cmd/wherehouse

.PHONY: run
run: build ## build and start the server with the embedded broker, data in ./data
	./bin/wherehouse serve --data $(DATA)

.PHONY: test
test: frontend ## vet, then every test with the race detector (integration and browser tests included)
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...

.PHONY: screenshots
screenshots: frontend ## regenerate the README's screenshots in docs/screenshots (needs chromium)
	WHEREHOUSE_SCREENSHOTS=$(CURDIR)/docs/screenshots $(GO) test -count=1 -run '^TestScreenshots$$' ./cmd/wherehouse/

.PHONY: fuzz
fuzz: ## run each fuzz target for a while (FUZZTIME=30s)
	$(GO) test -run XXX -fuzz ^FuzzParse$$ -fuzztime $${FUZZTIME:-30s} ./recorder/
	$(GO) test -run XXX -fuzz ^FuzzOpenEnvelope$$ -fuzztime $${FUZZTIME:-30s} ./crypto/
	$(GO) test -run XXX -fuzz ^FuzzDecryptParse$$ -fuzztime $${FUZZTIME:-30s} ./recorder/
	$(GO) test -run XXX -fuzz ^FuzzScanObject$$ -fuzztime $${FUZZTIME:-30s} ./recorder/
	$(GO) test -run XXX -fuzz ^FuzzParseGeometry$$ -fuzztime $${FUZZTIME:-30s} ./geo/
	$(GO) test -run XXX -fuzz ^FuzzFenceFeature$$ -fuzztime $${FUZZTIME:-30s} ./events/
	$(GO) test -run XXX -fuzz ^FuzzMentionsAny$$ -fuzztime $${FUZZTIME:-30s} ./api/
	$(GO) test -run XXX -fuzz ^FuzzFeatureProperties$$ -fuzztime $${FUZZTIME:-30s} ./api/
	$(GO) test -run XXX -fuzz ^FuzzDecodeBlock$$ -fuzztime $${FUZZTIME:-30s} ./storage/embedded/
	$(GO) test -run XXX -fuzz ^FuzzRecLine$$ -fuzztime $${FUZZTIME:-30s} ./importer/
	$(GO) test -run XXX -fuzz ^FuzzTakeout$$ -fuzztime $${FUZZTIME:-30s} ./importer/

.PHONY: lint
lint: ## gofmt and vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

.PHONY: bench
bench: frontend ## benchmarks, load test, browser timings and history at scale, beside baselines (~10 min)
	bash bench/run.sh

.PHONY: clean
clean: ## remove build output (not ./data)
	rm -rf bin frontend/node_modules
	rm -rf frontend/dist
