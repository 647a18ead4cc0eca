package process

import (
	"os"
	"path/filepath"
	"testing"
)

// The v2 files a container's limits are written to, and the OOM count read
// back, on a plain directory standing in for the unified tree (the machines
// this runs on have cgroup v1 controllers; TestMemoryLimit covers the
// kernel's side wherever a hierarchy is writable).
func TestCgroupV2Files(t *testing.T) {
	parent := t.TempDir()
	cgs := &cgroups{v2: true, parent: map[string]string{"": parent}}
	cg, err := cgs.newCgroup("ns_pod_c_0", 64<<20, 500, 512)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(parent, "knd-ns_pod_c_0")
	for file, want := range map[string]string{"memory.max": "67108864", "cpu.max": "50000 100000"} {
		if b, err := os.ReadFile(filepath.Join(dir, file)); err != nil || string(b) != want {
			t.Errorf("%s = %q (%v), want %q", file, b, err, want)
		}
	}
	if cg.oomKilled() {
		t.Error("OOM-killed before any memory.events")
	}
	if err := os.WriteFile(filepath.Join(dir, "memory.events"), []byte("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if !cg.oomKilled() {
		t.Error("memory.events counts an oom_kill, but oomKilled is false")
	}
}
