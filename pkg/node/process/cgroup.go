package process

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/knd-dev/knd/pkg/node/process/sandbox"
)

// cgroupRoot is where cgroups are mounted: the v1 controllers in
// directories of their own, or the v2 unified tree itself.
const cgroupRoot = "/sys/fs/cgroup"

// cgroups is where the containers' cgroups are made: children of knd's own
// cgroup in cgroup v1's memory and cpu controllers, or in the cgroup v2
// tree. Nil means limits are not enforced.
type cgroups struct {
	v2 bool
	// parent is the directory the containers' cgroups go in, per v1
	// controller ("memory", "cpu"), or under "" for v2.
	parent map[string]string
	// hierarchies are the v1 hierarchies of those controllers, as mounted
	// ("memory", "cpu,cpuacct").
	hierarchies []string
}

// detectCgroups finds writable cgroups for limits: cgroup v2 when it is the
// only hierarchy (preparing knd's cgroup to hold containers, see setUpV2),
// else cgroup v1's memory and cpu controllers. Containers' cgroups go in a
// child "kubepods", as the kubelet's do, so that all pods together weigh
// as much as knd against each other, whatever each pod's weight. Nil when
// neither works.
func detectCgroups() *cgroups {
	if _, err := os.Stat(filepath.Join(cgroupRoot, "cgroup.controllers")); err == nil {
		dir, err := setUpV2()
		if err != nil {
			return nil
		}
		pods, err := podsCgroup(dir, "")
		if err != nil {
			return nil
		}
		return &cgroups{v2: true, parent: map[string]string{"": pods}}
	}
	cg := &cgroups{parent: map[string]string{}}
	for _, c := range []string{"memory", "cpu"} {
		dir, hierarchy, err := ownCgroupV1(c)
		if err != nil || !writable(filepath.Join(dir, "cgroup.procs")) {
			return nil
		}
		cg.hierarchies = append(cg.hierarchies, hierarchy)
		if cg.parent[c], err = podsCgroup(dir, c); err != nil {
			return nil
		}
	}
	return cg
}

// podsCgroup makes the cgroup that holds the containers' under parent;
// on v2 it hands the memory and cpu controllers on to them. On v1, where
// knd's own threads sit in the parent and each weighs as much as a whole
// child cgroup, the pods' cpu cgroup weighs what the kubelet gives it, 1024
// shares a CPU, so that a starting app is not starved while knd is busy.
func podsCgroup(parent, controller string) (string, error) {
	dir := filepath.Join(parent, "kubepods")
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return "", err
	}
	var file, value string
	switch controller {
	case "":
		file, value = "cgroup.subtree_control", "+memory +cpu"
	case "cpu":
		file, value = "cpu.shares", strconv.Itoa(1024*runtime.NumCPU())
	default:
		return dir, nil
	}
	if err := os.WriteFile(filepath.Join(dir, file), []byte(value), 0o644); err != nil {
		return "", err
	}
	return dir, nil
}

func writable(path string) bool {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// ownCgroupV1 is the directory of knd's own cgroup in a v1 controller, and
// the controllers of that hierarchy ("cpu,cpuacct").
func ownCgroupV1(controller string) (dir, hierarchy string, err error) {
	err = eachOwnCgroup(func(controllers []string, path string) {
		if slices.Contains(controllers, controller) {
			hierarchy = strings.Join(controllers, ",")
			dir = filepath.Join(cgroupRoot, hierarchy, path)
			if _, err := os.Stat(dir); err != nil {
				dir = filepath.Join(cgroupRoot, controller, path)
			}
			if _, err := os.Stat(dir); err != nil {
				// Inside a container the path is relative to its own mount.
				dir = filepath.Join(cgroupRoot, controller)
			}
		}
	})
	if err == nil && dir == "" {
		err = fmt.Errorf("no cgroup v1 %s controller", controller)
	}
	return dir, hierarchy, err
}

// eachOwnCgroup calls fn with each line of /proc/self/cgroup:
// hierarchy-ID:controller-list:path.
func eachOwnCgroup(fn func(controllers []string, path string)) error {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		parts := strings.SplitN(s.Text(), ":", 3)
		if len(parts) == 3 {
			fn(strings.Split(parts[1], ","), parts[2])
		}
	}
	return s.Err()
}

// setUpV2 prepares knd's own v2 cgroup to hold the containers' cgroups and
// returns its directory. cgroup v2 lets a cgroup hand controllers to its
// children only when it holds no process itself, so the processes in knd's
// cgroup (knd, and whatever started it in the same cgroup) move into a
// leaf child named "knd", as container init scripts do, and the memory and
// cpu controllers are enabled for the children; containers' cgroups are the
// leaf's siblings. In the real root cgroup, which is exempt, nothing moves.
func setUpV2() (string, error) {
	var own string
	if err := eachOwnCgroup(func(c []string, path string) {
		if len(c) == 1 && c[0] == "" {
			own = path
		}
	}); err != nil {
		return "", err
	}
	dir := filepath.Join(cgroupRoot, own)
	enabled := func(dir string) bool {
		b, _ := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control"))
		f := strings.Fields(string(b))
		return slices.Contains(f, "memory") && slices.Contains(f, "cpu")
	}
	if filepath.Base(dir) == "knd" && enabled(filepath.Dir(dir)) {
		// Started inside a prepared cgroup's leaf (by a knd, or a test).
		return filepath.Dir(dir), nil
	}
	if enabled(dir) {
		return dir, nil // the root cgroup, which may hold processes
	}
	available, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return "", err
	}
	if f := strings.Fields(string(available)); !slices.Contains(f, "memory") || !slices.Contains(f, "cpu") {
		return "", fmt.Errorf("cgroup %s lacks the memory or cpu controller", own)
	}
	if !writable(filepath.Join(dir, "cgroup.subtree_control")) {
		return "", fmt.Errorf("cgroup %s is not writable", own)
	}
	if _, err := os.Stat(filepath.Join(dir, "cgroup.type")); errors.Is(err, os.ErrNotExist) {
		// The real root cgroup (it alone has no cgroup.type) may hold
		// processes and still hand controllers to its children: nothing
		// moves.
		if err := os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+memory +cpu"), 0o644); err != nil {
			return "", fmt.Errorf("enabling memory and cpu for the children of the root cgroup: %w", err)
		}
		return dir, nil
	}
	leaf := filepath.Join(dir, "knd")
	if err := os.Mkdir(leaf, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return "", err
	}
	// Processes may start meanwhile: a few rounds.
	for range 5 {
		procs, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if err != nil {
			return "", err
		}
		pids := strings.Fields(string(procs))
		if len(pids) == 0 {
			break
		}
		for _, pid := range pids {
			// A process may have exited since: not an error.
			_ = os.WriteFile(filepath.Join(leaf, "cgroup.procs"), []byte(pid), 0o644)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+memory +cpu"), 0o644); err != nil {
		return "", fmt.Errorf("enabling memory and cpu for the children of %s: %w", own, err)
	}
	return dir, nil
}

// cgroup holds one container's processes under its memory and CPU limits.
type cgroup struct {
	dirs    []string // the container's cgroup directories
	oomFile string   // where the kernel counts OOM kills ("oom_kill N")
}

// newCgroup creates the container's cgroups with memory (bytes) and CPU
// (millicores) limits, 0 meaning none, and its CPU weight (as v1 shares).
func (cgs *cgroups) newCgroup(name string, memory, milliCPU int64, shares uint64) (*cgroup, error) {
	cg := &cgroup{}
	mk := func(parent string, files [][2]string) (string, error) {
		dir := filepath.Join(parent, "knd-"+name)
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return "", err
		}
		cg.dirs = append(cg.dirs, dir)
		for _, f := range files {
			if err := os.WriteFile(filepath.Join(dir, f[0]), []byte(f[1]), 0o644); err != nil {
				cg.remove()
				return "", fmt.Errorf("setting %s: %w", f[0], err)
			}
		}
		return dir, nil
	}
	// A period of 100 ms; the quota is the CPU time per period.
	quota := strconv.FormatInt(max(milliCPU*100, 1000), 10)
	if cgs.v2 {
		// cpu.weight from shares, as runc and the kubelet convert them.
		files := [][2]string{{"cpu.weight", strconv.FormatUint(1+((shares-2)*9999)/262142, 10)}}
		if memory > 0 {
			files = append(files, [2]string{"memory.max", strconv.FormatInt(memory, 10)})
		}
		if milliCPU > 0 {
			files = append(files, [2]string{"cpu.max", quota + " 100000"})
		}
		dir, err := mk(cgs.parent[""], files)
		if err != nil {
			return nil, err
		}
		cg.oomFile = filepath.Join(dir, "memory.events")
		return cg, nil
	}
	var memFiles [][2]string
	if memory > 0 {
		memFiles = append(memFiles, [2]string{"memory.limit_in_bytes", strconv.FormatInt(memory, 10)})
	}
	dir, err := mk(cgs.parent["memory"], memFiles)
	if err != nil {
		return nil, err
	}
	cg.oomFile = filepath.Join(dir, "memory.oom_control")
	cpuFiles := [][2]string{{"cpu.shares", strconv.FormatUint(shares, 10)}}
	if milliCPU > 0 {
		cpuFiles = append(cpuFiles, [2]string{"cpu.cfs_period_us", "100000"}, [2]string{"cpu.cfs_quota_us", quota})
	}
	if _, err := mk(cgs.parent["cpu"], cpuFiles); err != nil {
		return nil, err
	}
	return cg, nil
}

// view is how the container sees its cgroups: the v1 hierarchies it is
// in, or cgroup v2.
func (cgs *cgroups) view() sandbox.Cgroups {
	if cgs.v2 {
		return sandbox.Cgroups{V2: true}
	}
	return sandbox.Cgroups{V1: cgs.hierarchies}
}

// add moves a process into the container's cgroups.
func (cg *cgroup) add(pid int) error {
	for _, dir := range cg.dirs {
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// oomKilled says whether the kernel killed a process of the container for
// exceeding its memory limit.
func (cg *cgroup) oomKilled() bool {
	if cg.oomFile == "" {
		return false
	}
	b, err := os.ReadFile(cg.oomFile)
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
	for _, dir := range cg.dirs {
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
