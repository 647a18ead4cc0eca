package process

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// cgroupRoot is where the cgroup v1 controllers are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// cgroup holds one container's processes under its memory and CPU limits:
// a child, named after the container, of knd's own cgroup in each cgroup
// v1 controller that has a limit to enforce.
type cgroup struct {
	memory string // the memory controller's directory, "" when no limit
	cpu    string // the cpu controller's directory, "" when no limit
}

// limitsSupported says whether this machine has writable cgroup v1 memory
// and cpu controllers, which the process provider uses for limits.
func limitsSupported() bool {
	for _, c := range []string{"memory", "cpu"} {
		dir, err := ownCgroup(c)
		if err != nil {
			return false
		}
		if unix := filepath.Join(dir, "cgroup.procs"); !writable(unix) {
			return false
		}
	}
	return true
}

func writable(path string) bool {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// ownCgroup is the directory of knd's own cgroup in a v1 controller.
func ownCgroup(controller string) (string, error) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		// hierarchy-ID:controller-list:path
		parts := strings.SplitN(s.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == controller {
				dir := filepath.Join(cgroupRoot, controller, parts[2])
				if _, err := os.Stat(dir); err != nil {
					// Inside a container the path is relative to its own mount.
					dir = filepath.Join(cgroupRoot, controller)
				}
				return dir, nil
			}
		}
	}
	return "", fmt.Errorf("no cgroup v1 %s controller", controller)
}

// newCgroup creates the container's cgroups with memory (bytes) and CPU
// (millicores) limits; 0 means no limit.
func newCgroup(name string, memory, milliCPU int64) (*cgroup, error) {
	cg := &cgroup{}
	mk := func(controller string, files map[string]string) (string, error) {
		parent, err := ownCgroup(controller)
		if err != nil {
			return "", err
		}
		dir := filepath.Join(parent, "knd-"+name)
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return "", err
		}
		for _, file := range []string{"cpu.cfs_period_us", "cpu.cfs_quota_us", "memory.limit_in_bytes"} {
			if v, ok := files[file]; ok {
				if err := os.WriteFile(filepath.Join(dir, file), []byte(v), 0o644); err != nil {
					os.Remove(dir)
					return "", fmt.Errorf("setting %s: %w", file, err)
				}
			}
		}
		return dir, nil
	}
	var err error
	if memory > 0 {
		if cg.memory, err = mk("memory", map[string]string{"memory.limit_in_bytes": strconv.FormatInt(memory, 10)}); err != nil {
			return nil, err
		}
	}
	if milliCPU > 0 {
		// A period of 100 ms; the quota is the CPU time per period.
		quota := max(milliCPU*100, 1000)
		if cg.cpu, err = mk("cpu", map[string]string{"cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": strconv.FormatInt(quota, 10)}); err != nil {
			cg.remove()
			return nil, err
		}
	}
	return cg, nil
}

// add moves a process into the container's cgroups.
func (cg *cgroup) add(pid int) error {
	for _, dir := range []string{cg.memory, cg.cpu} {
		if dir == "" {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// oomKilled says whether the kernel killed a process of the container for
// exceeding its memory limit.
func (cg *cgroup) oomKilled() bool {
	if cg.memory == "" {
		return false
	}
	b, err := os.ReadFile(filepath.Join(cg.memory, "memory.oom_control"))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n > 0
		}
	}
	return false
}

// remove deletes the cgroups once their processes are gone.
func (cg *cgroup) remove() {
	for _, dir := range []string{cg.memory, cg.cpu} {
		if dir == "" {
			continue
		}
		// The kernel may need a moment to empty a cgroup after its last
		// process exited.
		for i := 0; i < 50; i++ {
			if err := os.Remove(dir); err == nil || errors.Is(err, os.ErrNotExist) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
