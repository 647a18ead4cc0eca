// Command knd-sandbox-init is the first program of every sandboxed
// container of knd's process runtime (see pkg/node/process/sandbox). It is
// kept apart from knd, and embedded in it, because it must start in a
// millisecond: knd's own start-up (Kubernetes' package initialisation)
// takes over 100 ms.
//
// Run as "pause", it only waits to be stopped: the docker runtime runs it
// as each pod's first container, which holds the pod's network namespace
// for the others, as a kubelet's pause container does.
package main

import (
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/knd-dev/knd/pkg/node/process/sandbox"
)

func init() { runtime.LockOSThread() }

func main() {
	if len(os.Args) > 1 && os.Args[1] == "pause" {
		pause()
	}
	sandbox.Main()
}

// pause waits for SIGTERM or SIGINT and exits 0.
func pause() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
	os.Exit(0)
}
