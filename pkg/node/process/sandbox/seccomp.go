package sandbox

import (
	"fmt"
	"unsafe"

	seccomp "github.com/elastic/go-seccomp-bpf"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// deniedSyscalls fail with EPERM in a container: those Docker's and
// containerd's default profiles leave out for a container without
// CAP_SYS_ADMIN — they act on the whole machine (modules, clocks, swap,
// reboot, keyrings, BPF), make new namespaces or mounts, or read other
// processes' memory. Most would fail anyway without the capabilities the
// bounding set drops; the filter keeps it so if the kernel errs.
var deniedSyscalls = []string{
	"acct", "add_key", "bpf", "clock_adjtime", "clock_settime", "create_module", "delete_module",
	"finit_module", "fsconfig", "fsmount", "fsopen", "fspick", "get_kernel_syms", "init_module",
	"ioperm", "iopl", "kcmp", "kexec_file_load", "kexec_load", "keyctl", "lookup_dcookie", "mount",
	"move_mount", "name_to_handle_at", "nfsservctl", "open_by_handle_at", "open_tree", "perf_event_open",
	"pivot_root", "query_module", "quotactl", "reboot", "request_key", "setns", "settimeofday",
	"swapoff", "swapon", "sysfs", "_sysctl", "umount2", "unshare", "uselib", "userfaultfd", "ustat",
}

// defaultPolicy is the filter every sandboxed process gets.
var defaultPolicy = seccomp.Policy{
	DefaultAction: seccomp.ActionAllow,
	Syscalls:      []seccomp.SyscallGroup{{Action: seccomp.ActionErrno, Names: deniedSyscalls}},
}

// seccompProgram is the default policy as a BPF program for the kernel;
// empty where the kernel has no seccomp (the process runs without it).
type seccompProgram []unix.SockFilter

func assembleSeccomp() (seccompProgram, error) {
	if !seccomp.Supported() {
		return nil, nil
	}
	insts, err := defaultPolicy.Assemble()
	if err != nil {
		return nil, fmt.Errorf("assembling the seccomp filter: %w", err)
	}
	raw, err := bpf.Assemble(insts)
	if err != nil {
		return nil, fmt.Errorf("assembling the seccomp filter: %w", err)
	}
	prog := make(seccompProgram, len(raw))
	for i, in := range raw {
		prog[i] = unix.SockFilter{Code: in.Op, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	return prog, nil
}

// load installs the filter on the calling thread only (no TSYNC: that
// thread execs next, which ends the others), after no_new_privs is set.
func (p seccompProgram) load() error {
	if len(p) == 0 {
		return nil
	}
	fprog := unix.SockFprog{Len: uint16(len(p)), Filter: &p[0]}
	if _, _, e := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&fprog))); e != 0 {
		return fmt.Errorf("loading the seccomp filter: %w", e)
	}
	return nil
}
