// Command knd-sandbox-init is the first program of every sandboxed
// container of knd's process runtime (see pkg/node/process/sandbox). It is
// kept apart from knd, and embedded in it, because it must start in a
// millisecond: knd's own start-up (Kubernetes' package initialisation)
// takes over 100 ms.
package main

import (
	"runtime"

	"github.com/knd-dev/knd/pkg/node/process/sandbox"
)

func init() { runtime.LockOSThread() }

func main() { sandbox.Main() }
