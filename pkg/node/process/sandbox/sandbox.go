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
	"sync"
	"syscall"

	"github.com/knd-dev/knd/pkg/node/process/warm"
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
	// Mounts are the container's volumes, parents first.
	Mounts []Mount
	// Cgroups, when set, are the cgroups the process was moved into
	// before it got the spec: it sees them, read-only, as /sys/fs/cgroup.
	Cgroups Cgroups
	// NetNS is the network namespace to join ("": stay in the host's).
	NetNS string
}

// Mount is a host directory or file bind-mounted into the container.
type Mount struct {
	Source, Target string
	ReadOnly       bool
}

// Cgroups are the hierarchies a process sees: cgroup v2, or the v1
// hierarchies named by their controllers ("memory", "cpu,cpuacct").
type Cgroups struct {
	V2 bool     `json:",omitempty"`
	V1 []string `json:",omitempty"`
}

func (c Cgroups) set() bool { return c.V2 || len(c.V1) > 0 }

// Starter starts sandboxed processes. It keeps a few inits started ahead,
// each through its exec and its Go runtime's start and waiting for a
// spec, so that a container's start pays only its own setup and exec
// (a process's exec alone costs about 5 ms on a small VM).
type Starter struct {
	initPath string
	idle     *warm.Pool[*idleInit]
}

// idleInit is an init waiting for its spec, with knd's ends of its pipes.
type idleInit struct {
	cmd            *exec.Cmd
	spec, errs     *os.File
	stdout, stderr *os.File
}

// NewStarter runs inits from initPath, keeping ahead idle ones ready.
func NewStarter(initPath string, ahead int) *Starter {
	s := &Starter{initPath: initPath}
	s.idle = warm.New(ahead, s.spawn, (*idleInit).kill)
	return s
}

// Close stops the idle inits.
func (s *Starter) Close() { s.idle.Close() }

// spawn starts an init in new mount, PID, UTS and IPC namespaces; it waits
// for its spec on fd 3 and reports a failure on fd 4.
func (s *Starter) spawn() (*idleInit, error) {
	var files [8]*os.File // spec r/w, errs r/w, stdout r/w, stderr r/w
	for i := 0; i < len(files); i += 2 {
		r, w, err := os.Pipe()
		if err != nil {
			closeAll(files[:i])
			return nil, err
		}
		files[i], files[i+1] = r, w
	}
	in := &idleInit{spec: files[1], errs: files[2], stdout: files[4], stderr: files[6]}
	in.cmd = &exec.Cmd{
		Path: s.initPath, Args: []string{"knd-sandbox-init"}, Env: []string{},
		Stdout: files[5], Stderr: files[7], ExtraFiles: []*os.File{files[0], files[3]},
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC,
			// The process dies with knd even if knd is killed, so a restart
			// never finds orphans; it leads its own process group.
			Pdeathsig: syscall.SIGKILL, Setpgid: true,
		},
	}
	err := in.cmd.Start()
	// The child's ends.
	closeAll([]*os.File{files[0], files[3], files[5], files[7]})
	if err != nil {
		closeAll([]*os.File{in.spec, in.errs, in.stdout, in.stderr})
		return nil, err
	}
	return in, nil
}

func (in *idleInit) kill() {
	_ = in.cmd.Process.Kill()
	_ = in.cmd.Wait()
	closeAll([]*os.File{in.spec, in.errs, in.stdout, in.stderr})
}

func closeAll(files []*os.File) {
	for _, f := range files {
		if f != nil {
			f.Close()
		}
	}
}

// Process is a started sandboxed process.
type Process struct {
	*exec.Cmd
	output sync.WaitGroup // copying its stdout and stderr
}

// Wait waits for the process to exit and its output to be copied.
func (p *Process) Wait() error {
	err := p.Cmd.Wait()
	p.output.Wait()
	return err
}

// WaitOutput waits until the process's output has all been copied (after
// Cmd.Wait).
func (p *Process) WaitOutput() { p.output.Wait() }

// Start runs spec's process. join, when not nil, is given the init's PID
// before any of the container's code runs (to move it into a cgroup);
// netns is the pod's network namespace (nil: the host's). Start returns
// once the entrypoint has been exec'd, or with the reason it could not be.
func (s *Starter) Start(spec Spec, stdout, stderr io.Writer, netns *os.File, join func(pid int) error) (*Process, error) {
	in, err := s.idle.Get()
	if err != nil {
		return nil, err
	}
	defer in.spec.Close()
	defer in.errs.Close()
	p := &Process{Cmd: in.cmd}
	for _, c := range []struct {
		w io.Writer
		r *os.File
	}{{stdout, in.stdout}, {stderr, in.stderr}} {
		p.output.Add(1)
		go func() {
			defer p.output.Done()
			defer c.r.Close()
			_, _ = io.Copy(c.w, c.r)
		}()
	}
	fail := func(err error) (*Process, error) {
		_ = p.Process.Kill()
		_ = p.Wait()
		return nil, err
	}
	if join != nil {
		if err := join(p.Process.Pid); err != nil {
			return fail(err)
		}
	}
	if netns != nil {
		// The init opens knd's descriptor of the namespace.
		spec.NetNS = fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), netns.Fd())
	}
	if err := json.NewEncoder(in.spec).Encode(spec); err != nil {
		return fail(fmt.Errorf("starting the sandbox: %w", err))
	}
	in.spec.Close()
	msg, err := io.ReadAll(io.LimitReader(in.errs, 4096))
	if err != nil {
		return fail(err)
	}
	if len(msg) > 0 {
		return fail(errors.New(strings.TrimSpace(string(msg))))
	}
	return p, nil
}
