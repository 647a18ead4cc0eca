package sandbox

import (
	seccomp "github.com/elastic/go-seccomp-bpf"
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

// defaultProfile is the filter every sandboxed process gets.
func defaultProfile() seccomp.Filter {
	return seccomp.Filter{
		NoNewPrivs: true,
		Policy: seccomp.Policy{
			DefaultAction: seccomp.ActionAllow,
			Syscalls:      []seccomp.SyscallGroup{{Action: seccomp.ActionErrno, Names: deniedSyscalls}},
		},
	}
}

// installSeccomp loads the default profile on the calling thread, which
// then execs; a kernel without seccomp runs without it.
func installSeccomp() error {
	if !seccomp.Supported() {
		return nil
	}
	return seccomp.LoadFilter(defaultProfile())
}
