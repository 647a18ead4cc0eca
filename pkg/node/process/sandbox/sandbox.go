// Package sandbox starts a container's process isolated the way a container
// runtime does, without one: knd runs a small init program (Main, built as
// cmd/knd-sandbox-init and embedded in knd) in new mount, PID, UTS and IPC
// namespaces; the init joins the pod's
// network namespace, pivots into the container's root filesystem, mounts
// /proc, /dev and a read-only /sys, takes the container's user, keeps only
// the container runtimes' default capabilities, sets no_new_privs and a
// seccomp filter, and execs the entrypoint. Exec (probes, hooks) goes
// through the same init with the same root.
package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Spec is what the init needs to start one process.
type Spec struct {
	// Rootfs is the container's root filesystem (a mount point of knd's).
	Rootfs string
	Argv   []string
	Env    []string
	// Dir is the working directory inside Rootfs ("/" when empty).
	Dir string
	// User is the image's user ("uid", "name", "uid:gid", ...), resolved
	// with the image's /etc/passwd and /etc/group; empty is root.
	User string
	// Hostname is the pod's name.
	Hostname string
	// Files are bind-mounted into the container: container path → host
	// file (/etc/hosts, /etc/resolv.conf, /etc/hostname).
	Files map[string]string
	// NetNS says whether the init joins the network namespace handed to it.
	NetNS bool
}

// Start runs spec's process as a child of knd. join, when not nil, is given
// the init's PID before any of the container's code runs (to move it into
// a cgroup). netns is the pod's network namespace (nil for the host's).
// Start returns once the entrypoint has been exec'd, or with the reason it
// could not be.
func Start(initPath string, spec Spec, stdout, stderr io.Writer, netns *os.File, join func(pid int) error) (*exec.Cmd, error) {
	spec.NetNS = netns != nil
	specR, specW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer specR.Close()
	defer specW.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer errR.Close()
	defer errW.Close()
	cmd := &exec.Cmd{
		Path: initPath, Args: []string{"knd-sandbox-init"},
		Stdout: stdout, Stderr: stderr,
		// fd 3: the spec; fd 4: where the init reports a failure (closed
		// on exec); fd 5: the pod's network namespace.
		ExtraFiles: []*os.File{specR, errW},
		Env:        []string{},
		WaitDelay:  2 * time.Second,
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC,
			// The process dies with knd even if knd is killed, so a restart
			// never finds orphans; it leads its own process group.
			Pdeathsig: syscall.SIGKILL, Setpgid: true,
		},
	}
	if netns != nil {
		cmd.ExtraFiles = append(cmd.ExtraFiles, netns)
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	specR.Close()
	errW.Close()
	fail := func(err error) (*exec.Cmd, error) {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, err
	}
	if join != nil {
		if err := join(cmd.Process.Pid); err != nil {
			return fail(err)
		}
	}
	if err := json.NewEncoder(specW).Encode(spec); err != nil {
		return fail(fmt.Errorf("starting the sandbox: %w", err))
	}
	specW.Close()
	msg, err := io.ReadAll(io.LimitReader(errR, 4096))
	if err != nil {
		return fail(err)
	}
	if len(msg) > 0 {
		return fail(errors.New(strings.TrimSpace(string(msg))))
	}
	return cmd, nil
}
