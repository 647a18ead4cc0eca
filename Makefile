# knd — build, run and test.
K8S_VERSION := v1.37.2
VERSION_PKG := k8s.io/component-base/version
LDFLAGS := -X $(VERSION_PKG).gitVersion=$(K8S_VERSION) -X $(VERSION_PKG).gitMajor=1 -X $(VERSION_PKG).gitMinor=37 \
	-X $(VERSION_PKG).buildDate=1970-01-01T00:00:00Z -X $(VERSION_PKG).gitTreeState=clean
CONTROLLER_GEN := go run sigs.k8s.io/controller-tools/cmd/controller-gen@v0.23.0
DATA_DIR ?= $(HOME)/.knd
SANDBOX_INIT := pkg/node/process/initbin/knd-sandbox-init
SAMPLE_APPS := pkg/samples/appbin/helloworld pkg/samples/appbin/rest-api

.PHONY: build run test fuzz unit integration generate verify-generate clean tutorial

build: bin/knd

bin/knd: $(shell find cmd pkg -name '*.go') config/crd/*.yaml go.mod go.sum $(SANDBOX_INIT) $(SAMPLE_APPS)
	go build -ldflags "$(LDFLAGS)" -o bin/knd ./cmd/knd

# The process runtime's container init, embedded in knd: a small static
# program, because knd itself takes over 100 ms to start.
$(SANDBOX_INIT): $(shell find cmd/knd-sandbox-init pkg/node/process/sandbox -name '*.go') go.mod go.sum
	CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o $@ ./cmd/knd-sandbox-init

# The tutorials' sample apps, embedded in knd and put in its image store under
# the tutorials' image names (pkg/samples).
pkg/samples/appbin/%: examples/apps/%/main.go
	CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o $@ ./examples/apps/$*

run: bin/knd
	bin/knd server --data-dir $(DATA_DIR)

# Unit tests, then the integration tests against a real knd server, then
# the gateway's parsers fuzzed against net/http's for a moment each.
test: bin/knd
	KND_BIN=$(CURDIR)/bin/knd go test -count=1 -timeout 30m ./...
	$(MAKE) fuzz

# Longer by hand: make fuzz FUZZTIME=10m
FUZZTIME ?= 10s
fuzz:
	for f in FuzzParseRequest FuzzParseResponse FuzzChunkedBody; do \
		go test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) ./pkg/gateway || exit 1; done

# Replays the tutorials (test/e2e) and writes docs/tutorial.md from what knd printed.
tutorial: bin/knd
	KND_BIN=$(CURDIR)/bin/knd go test -count=1 -run TestTutorial ./test/e2e/ -args -tutorial=$(CURDIR)/docs/tutorial.md

# The Gateway API's CRDs knd serves come from the module go.mod pins, as
# upstream publishes them.
GATEWAY_API_CRDS := gatewayclasses gateways httproutes

generate:
	$(CONTROLLER_GEN) object paths=./pkg/apis/...
	$(CONTROLLER_GEN) crd:crdVersions=v1,maxDescLen=0,allowDangerousTypes=true paths=./pkg/apis/... output:crd:dir=config/crd
	dir=$$(go list -m -f '{{.Dir}}' sigs.k8s.io/gateway-api) && for crd in $(GATEWAY_API_CRDS); do \
		install -m 644 $$dir/config/crd/standard/gateway.networking.k8s.io_$$crd.yaml config/crd/; done

verify-generate: generate
	git diff --exit-code -- config/crd pkg/apis

clean:
	rm -rf bin
