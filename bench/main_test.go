// Package bench holds knd's end-to-end benchmarks. They run against a real
// `knd server` started once for the package, and only when benchmarks are
// asked for (go test -bench), so `make test` does not pay for the server.
// docs/benchmarks.md records their figures and the commands behind them.
package bench

import (
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/knd-dev/knd/test/kndtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

var knd *kndtest.Server

func TestMain(m *testing.M) {
	flag.Parse()
	ctrllog.SetLogger(logr.Discard())
	if f := flag.Lookup("test.bench"); f == nil || f.Value.String() == "" {
		os.Exit(m.Run())
	}
	// KND_RUNTIME=docker measures the docker provider instead of processes;
	// KND_SERVER_ARGS adds `knd server` flags (e.g. --max-pods=1100).
	extra := strings.Fields(os.Getenv("KND_SERVER_ARGS"))
	if rt := os.Getenv("KND_RUNTIME"); rt != "" {
		extra = append(extra, "--runtime="+rt)
	}
	os.Exit(kndtest.RunSharedWith(m, extra, func(s *kndtest.Server) { knd = s }))
}
