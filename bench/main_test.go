// Package bench holds knd's end-to-end benchmarks. They run against a real
// `knd server` started once for the package, and only when benchmarks are
// asked for (go test -bench), so `make test` does not pay for the server.
// docs/benchmarks.md records their figures and the commands behind them.
package bench

import (
	"flag"
	"os"
	"testing"

	"github.com/knd-dev/knd/test/kndtest"
)

var knd *kndtest.Server

func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.bench"); f == nil || f.Value.String() == "" {
		os.Exit(m.Run())
	}
	os.Exit(kndtest.RunShared(m, func(s *kndtest.Server) { knd = s }))
}
