package sandbox

import (
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"unsafe"

	"github.com/moby/sys/user"
	"golang.org/x/sys/unix"
)

// The file descriptors Start hands the init.
const (
	specFd = 3
	errFd  = 4
)

// Main is the body of knd-sandbox-init, the small program Start runs:
// it sets the sandbox up and execs the entrypoint, or reports why not.
// Namespaces, the bounding set and no_new_privs belong to a thread: the
// caller locks its goroutine to its thread first, and everything happens
// on that thread, which then execs.
func Main() {
	runtime.LockOSThread()
	if err := run(); err != nil {
		fmt.Fprintln(os.NewFile(errFd, "errors"), err)
		os.Exit(127)
	}
}

// run sets the sandbox up and execs the entrypoint; it returns only on failure.
func run() error {
	// Ready before the spec comes: the filter is the same for every container.
	filter, err := assembleSeccomp()
	if err != nil {
		return err
	}
	var spec Spec
	if err := json.NewDecoder(os.NewFile(specFd, "spec")).Decode(&spec); err != nil {
		return fmt.Errorf("reading the sandbox spec: %w", err)
	}
	unix.CloseOnExec(errFd)
	unix.Close(specFd)
	// knd moved the process into its cgroups before sending the spec:
	// they become the root of its cgroup namespace.
	if spec.Cgroups.set() {
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			return fmt.Errorf("cgroup namespace: %w", err)
		}
	}
	if spec.NetNS != "" {
		if err := joinNetwork(spec.NetNS); err != nil {
			return fmt.Errorf("joining the pod's network namespace: %w", err)
		}
	}
	if err := enterRoot(spec.Rootfs, spec.Files, spec.Mounts); err != nil {
		return err
	}
	if err := mountSystem(); err != nil {
		return err
	}
	if err := mountCgroups(spec.Cgroups); err != nil {
		return err
	}
	if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
		return fmt.Errorf("setting the hostname: %w", err)
	}
	dir := spec.Dir
	if dir == "" {
		dir = "/"
	}
	// Like a container runtime, create the working directory if the image lacks it.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.Chdir(dir); err != nil {
		return err
	}
	exe, err := LookPath("/", spec.Argv[0], spec.Env)
	if err != nil {
		return err
	}
	u, err := user.GetExecUserPath(spec.User, &user.ExecUser{Home: "/"}, "/etc/passwd", "/etc/group")
	if err != nil {
		return fmt.Errorf("unable to find user %s: %w", spec.User, err)
	}
	if err := dropPrivileges(u, filter); err != nil {
		return err
	}
	env := spec.Env
	if !hasEnv(env, "HOME") {
		env = append(env, "HOME="+u.Home)
	}
	err = unix.Exec(exe, spec.Argv, env)
	return fmt.Errorf("exec %s: %w", spec.Argv[0], err)
}

func joinNetwork(path string) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Setns(fd, unix.CLONE_NEWNET)
}

// enterRoot makes rootfs the process's root with pivot_root(2), leaving
// nothing of the host's filesystem reachable (chroot(2) can be escaped),
// with files (container path → host file) and mounts bind-mounted into it.
func enterRoot(rootfs string, files map[string]string, mounts []Mount) error {
	// Nothing mounted here may reach knd's mount namespace.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making mounts private: %w", err)
	}
	if err := unix.Mount(rootfs, rootfs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("mounting the root filesystem: %w", err)
	}
	for target, src := range files {
		if err := bindFile(rootfs, src, target); err != nil {
			return fmt.Errorf("mounting %s: %w", target, err)
		}
	}
	for _, m := range mounts {
		if err := bindMount(rootfs, m); err != nil {
			return fmt.Errorf("mounting volume at %s: %w", m.Target, err)
		}
	}
	if err := unix.Chdir(rootfs); err != nil {
		return err
	}
	// pivot_root(".", ".") stacks the old root over the new one; detaching
	// it uncovers the new root (runc does the same).
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detaching the host's root: %w", err)
	}
	return unix.Chdir("/")
}

// mountSystem mounts /proc, a minimal /dev and a read-only /sys, as a
// container runtime does, with the kernel's knobs read-only or masked.
func mountSystem() error {
	const nodev = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	mounts := []struct {
		target, fstype, data string
		flags                uintptr
	}{
		{"/proc", "proc", "", nodev},
		{"/dev", "tmpfs", "mode=755,size=65536k", unix.MS_NOSUID | unix.MS_STRICTATIME},
		{"/dev/pts", "devpts", "newinstance,ptmxmode=0666,mode=0620", unix.MS_NOSUID | unix.MS_NOEXEC},
		{"/dev/shm", "tmpfs", "mode=1777,size=65536k", nodev},
		{"/sys", "sysfs", "", nodev | unix.MS_RDONLY},
	}
	for _, m := range mounts {
		if err := os.MkdirAll(m.target, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(m.fstype, m.target, m.fstype, m.flags, m.data); err != nil {
			return fmt.Errorf("mounting %s: %w", m.target, err)
		}
	}
	devices := []struct {
		name         string
		major, minor uint32
	}{{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}}
	old := unix.Umask(0)
	defer unix.Umask(old)
	for _, d := range devices {
		if err := unix.Mknod("/dev/"+d.name, unix.S_IFCHR|0o666, int(unix.Mkdev(d.major, d.minor))); err != nil {
			return fmt.Errorf("creating /dev/%s: %w", d.name, err)
		}
	}
	for link, target := range map[string]string{
		"/dev/ptmx": "pts/ptmx", "/dev/fd": "/proc/self/fd", "/dev/stdin": "/proc/self/fd/0",
		"/dev/stdout": "/proc/self/fd/1", "/dev/stderr": "/proc/self/fd/2", "/dev/core": "/proc/kcore",
	} {
		if err := os.Symlink(target, link); err != nil {
			return err
		}
	}
	// Read-only, as Docker's and containerd's defaults: the kernel's
	// tunables and the interfaces that reach hardware.
	for _, p := range []string{"/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus", "/proc/fs"} {
		if err := readOnly(p); err != nil {
			return err
		}
	}
	// Masked: what tells about or acts on the host's kernel.
	for _, p := range []string{"/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
		"/proc/sched_debug", "/proc/acpi", "/proc/scsi", "/sys/firmware"} {
		if err := mask(p); err != nil {
			return err
		}
	}
	return nil
}

// mountCgroups mounts the process's own cgroups read-only at
// /sys/fs/cgroup, as a container runtime does: cgroup v2 itself, or a
// tmpfs with a directory per v1 hierarchy ("cpu,cpuacct", with a link
// named after each of its controllers).
func mountCgroups(c Cgroups) error {
	const dir = "/sys/fs/cgroup"
	const flags = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_RDONLY
	if c.V2 {
		if err := unix.Mount("cgroup2", dir, "cgroup2", flags, ""); err != nil {
			return fmt.Errorf("mounting %s: %w", dir, err)
		}
		return nil
	}
	if len(c.V1) == 0 {
		return nil
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", flags&^unix.MS_RDONLY, "mode=755,size=64k"); err != nil {
		return fmt.Errorf("mounting %s: %w", dir, err)
	}
	for _, h := range c.V1 {
		p := path.Join(dir, h)
		if err := os.Mkdir(p, 0o755); err != nil {
			return err
		}
		if err := unix.Mount("cgroup", p, "cgroup", flags, h); err != nil {
			return fmt.Errorf("mounting %s: %w", p, err)
		}
		if controllers := strings.Split(h, ","); len(controllers) > 1 {
			for _, c := range controllers {
				if err := os.Symlink(h, path.Join(dir, c)); err != nil {
					return err
				}
			}
		}
	}
	return unix.Mount("", dir, "", unix.MS_REMOUNT|flags, "")
}

func readOnly(p string) error {
	if _, err := os.Lstat(p); os.IsNotExist(err) {
		return nil
	}
	if err := unix.Mount(p, p, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("read-only %s: %w", p, err)
	}
	return unix.Mount(p, p, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
}

func mask(p string) error {
	st, err := os.Lstat(p)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.IsDir() {
		return unix.Mount("tmpfs", p, "tmpfs", unix.MS_RDONLY, "size=0")
	}
	return unix.Mount("/dev/null", p, "", unix.MS_BIND, "")
}

// bindFile mounts the host file src over target in rootfs, creating it if
// the image lacks it. target is opened through os.Root, which resolves
// symlinks inside rootfs only, and the mount goes onto that open file, so
// an image's symlink cannot aim the mount at the host's files.
func bindFile(rootfs, src, target string) error {
	root, err := os.OpenRoot(rootfs)
	if err != nil {
		return err
	}
	defer root.Close()
	rel := strings.TrimPrefix(path.Clean(target), "/")
	if err := root.MkdirAll(path.Dir(rel), 0o755); err != nil {
		return err
	}
	f, err := root.OpenFile(rel, os.O_RDONLY|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Mount(src, fmt.Sprintf("/proc/self/fd/%d", f.Fd()), "", unix.MS_BIND, "")
}

// bindMount mounts m's host directory or file at its target in rootfs
// (made if the image lacks it), read-only if asked, never with set-user-ID
// programs or devices. As with bindFile, the target is opened inside
// rootfs and the mount goes onto that open file; the mount is made
// detached (open_tree), given its flags, then moved there, so it is never
// writable at its target.
func bindMount(rootfs string, m Mount) error {
	st, err := os.Stat(m.Source)
	if err != nil {
		return err
	}
	root, err := os.OpenRoot(rootfs)
	if err != nil {
		return err
	}
	defer root.Close()
	rel := strings.TrimPrefix(path.Clean(m.Target), "/")
	var target *os.File
	if st.IsDir() {
		if err := root.MkdirAll(rel, 0o755); err != nil {
			return err
		}
		target, err = root.Open(rel)
	} else {
		if err := root.MkdirAll(path.Dir(rel), 0o755); err != nil {
			return err
		}
		target, err = root.OpenFile(rel, os.O_RDONLY|os.O_CREATE, 0o644)
	}
	if err != nil {
		return err
	}
	defer target.Close()
	tree, err := unix.OpenTree(unix.AT_FDCWD, m.Source, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
	if err != nil {
		return fmt.Errorf("open_tree: %w", err)
	}
	defer unix.Close(tree)
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV}
	if m.ReadOnly {
		attr.Attr_set |= unix.MOUNT_ATTR_RDONLY
	}
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr); err != nil {
		return fmt.Errorf("mount_setattr: %w", err)
	}
	return unix.MoveMount(tree, "", int(target.Fd()), "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH)
}

// defaultCaps are the capabilities containerd and Docker give a container
// by default (CapEff a80425fb for root).
var defaultCaps = map[int]bool{
	unix.CAP_CHOWN: true, unix.CAP_DAC_OVERRIDE: true, unix.CAP_FSETID: true, unix.CAP_FOWNER: true,
	unix.CAP_MKNOD: true, unix.CAP_NET_RAW: true, unix.CAP_SETGID: true, unix.CAP_SETUID: true,
	unix.CAP_SETFCAP: true, unix.CAP_SETPCAP: true, unix.CAP_NET_BIND_SERVICE: true,
	unix.CAP_SYS_CHROOT: true, unix.CAP_KILL: true, unix.CAP_AUDIT_WRITE: true,
}

// dropPrivileges limits the capability bounding set to defaultCaps, sets
// no_new_privs, installs the seccomp filter and becomes u. A root user
// execs with the bounding set as its capabilities; any other user with none.
func dropPrivileges(u *user.ExecUser, filter seccompProgram) error {
	last := lastCap()
	for c := 0; c <= last; c++ {
		if !defaultCaps[c] {
			if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
				return fmt.Errorf("dropping capability %d: %w", c, err)
			}
		}
	}
	if err := setCredentials(u); err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	return filter.load()
}

// setCredentials makes the calling thread u's: its supplementary groups,
// group and user. Go's own calls (syscall.Setresuid and the like) change
// every thread of the process, stopping each in turn, which cost 1–7 ms
// under load; only this thread matters, since it execs next and the exec
// ends every other thread.
func setCredentials(u *user.ExecUser) error {
	gids := make([]uint32, len(u.Sgids))
	for i, g := range u.Sgids {
		gids[i] = uint32(g)
	}
	var list unsafe.Pointer
	if len(gids) > 0 {
		list = unsafe.Pointer(&gids[0])
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(gids)), uintptr(list), 0); e != 0 {
		return fmt.Errorf("setgroups: %w", e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(u.Gid), uintptr(u.Gid), uintptr(u.Gid)); e != 0 {
		return fmt.Errorf("setgid %d: %w", u.Gid, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(u.Uid), uintptr(u.Uid), uintptr(u.Uid)); e != 0 {
		return fmt.Errorf("setuid %d: %w", u.Uid, e)
	}
	return nil
}

func lastCap() int {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return unix.CAP_LAST_CAP
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return unix.CAP_LAST_CAP
	}
	return n
}

// LookPath finds name inside root the way a container runtime does: as
// given when it has a slash, else along the container's PATH. It returns
// the path inside root.
func LookPath(root, name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		p := path.Clean("/" + name)
		if isExecutable(filepath.Join(root, p)) {
			return p, nil
		}
		return "", fmt.Errorf("exec: %q: stat %s: no such file or directory", name, p)
	}
	pathEnv := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathEnv = v
		}
	}
	for _, dir := range filepath.SplitList(pathEnv) {
		if p := path.Join("/", dir, name); isExecutable(filepath.Join(root, p)) {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec: %q: executable file not found in $PATH", name)
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

func hasEnv(env []string, key string) bool {
	for _, kv := range env {
		if strings.HasPrefix(kv, key+"=") {
			return true
		}
	}
	return false
}
