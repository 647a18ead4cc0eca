// Package integration runs the knd binary as users do and checks what they
// see through the real API: admission messages, defaults, printer columns,
// authentication, the node agent and restarts. One server is shared by the
// whole package.
package integration

import (
	"context"
	"os"
	"testing"

	"github.com/go-logr/logr"
	"github.com/knd-dev/knd/test/kndtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

var knd *kndtest.Server

func TestMain(m *testing.M) {
	ctrllog.SetLogger(logr.Discard())
	os.Exit(kndtest.RunShared(m, func(s *kndtest.Server) { knd = s }))
}

func testContext(t *testing.T) context.Context { return kndtest.Context(t) }
