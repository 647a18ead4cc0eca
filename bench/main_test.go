// Package bench holds knd's end-to-end benchmarks. They run against a real
// `knd server` started once for the package, and only when benchmarks are
// asked for (go test -bench), so `make test` does not pay for the server.
// docs/benchmarks.md records their figures and the commands behind them.
package bench

import (
	"flag"
	"fmt"
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
	var err error
	knd, err = kndtest.New()
	if err == nil {
		err = knd.Start()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	knd.Stop()
	os.RemoveAll(knd.DataDir)
	os.Exit(code)
}
