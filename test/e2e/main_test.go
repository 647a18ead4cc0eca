// Package e2e replays the tutorials in ../shared/seeds against a running
// knd, step by step, asserting what each step shows. With -tutorial=FILE it
// also writes the commands and their real output as the user guide
// (`make tutorial` writes docs/tutorial.md), so the guide cannot drift.
package e2e

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-logr/logr"
	"github.com/knd-dev/knd/test/kndtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

var (
	server       *kndtest.Server
	repoRoot, _  = filepath.Abs("../..")
	tutorialFile = flag.String("tutorial", "", "write the tutorial, with this run's output, to this file")
)

func TestMain(m *testing.M) {
	flag.Parse()
	ctrllog.SetLogger(logr.Discard())
	os.Exit(kndtest.RunShared(m, func(s *kndtest.Server) { server = s }))
}
