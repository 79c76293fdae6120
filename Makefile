# exportd — run `make help` for the targets.
GO ?= go
STATICCHECK_VERSION ?= v0.8.2

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build the exportd binary into ./bin (no cgo).
	CGO_ENABLED=0 $(GO) build -o bin/exportd ./cmd/exportd

.PHONY: demo
demo: ## Create the demo data and serve it on http://127.0.0.1:8080 (web UI, API, jobs; Ctrl-C stops).
	$(GO) run ./cmd/exportd demo

# The tests run through internal/testsummary: go test's own lines ("ok"/"FAIL"
# per package, the output of failed tests), then what was skipped and why,
# grouped, with what turns each group on; the exit status is go test's.
TESTSUMMARY = bin/testsummary

.PHONY: $(TESTSUMMARY)
$(TESTSUMMARY):
	@$(GO) build -o $@ ./internal/testsummary

.PHONY: test
test: $(TESTSUMMARY) ## Run every test with the race detector; ends with what was skipped and why (integration tests need the variables that .ci/run sets).
	$(TESTSUMMARY) $(GO) test -json -race -count=1 -timeout 45m ./...

.PHONY: test-short
test-short: $(TESTSUMMARY) ## Quick tests: skips the multi-gigabyte, 1M-row and build tests.
	$(TESTSUMMARY) $(GO) test -json -short -count=1 ./...

.PHONY: test-race
test-race: test ## Same as test (the race detector is always on).

.PHONY: lint
lint: ## gofmt, go vet and staticcheck.
	@test -z "$$(gofmt -l .)" || (echo "gofmt needed:"; gofmt -l .; exit 1)
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

.PHONY: bench
bench: ## Go benchmarks (writers, engine); see bench/RESULTS.md for the side-by-side programs.
	$(GO) test -run '^$$' -bench . -benchmem ./...

.PHONY: fuzz
fuzz: ## Fuzz the XLSX writer's round trip for 60 s.
	$(GO) test -run '^$$' -fuzz FuzzRoundTrip -fuzztime 60s ./xlsx
