package volume

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// An API-data volume's files are replaced as a whole: new keys appear,
// changed ones change, removed ones go, and an unchanged payload is not
// rewritten.
func TestWriteAtomic(t *testing.T) {
	dir := t.TempDir()
	changed, err := writeAtomic(dir, map[string]file{"a": {[]byte("1"), 0o644}, "sub/b": {[]byte("2"), 0o600}})
	if err != nil || !changed {
		t.Fatalf("first write: %v %v", changed, err)
	}
	first, _ := os.Readlink(filepath.Join(dir, dataLink))
	if got := read(t, filepath.Join(dir, "sub", "b")); got != "2" {
		t.Errorf("sub/b: %q", got)
	}
	if st, err := os.Stat(filepath.Join(dir, "sub", "b")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("sub/b mode: %v %v", st, err)
	}
	if changed, err := writeAtomic(dir, map[string]file{"a": {[]byte("1"), 0o644}, "sub/b": {[]byte("2"), 0o600}}); err != nil || changed {
		t.Errorf("the same files rewritten: %v %v", changed, err)
	}
	if changed, err := writeAtomic(dir, map[string]file{"a": {[]byte("1"), 0o644}, "sub/b": {[]byte("2"), 0o644}}); err != nil || !changed {
		t.Errorf("a mode change not written: %v %v", changed, err)
	}
	if _, err := writeAtomic(dir, map[string]file{"a": {[]byte("3"), 0o644}, "c": {[]byte("4"), 0o644}}); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(dir, "a")) + read(t, filepath.Join(dir, "c")); got != "34" {
		t.Errorf("after the update: %q", got)
	}
	if _, err := os.Lstat(filepath.Join(dir, "sub")); !os.IsNotExist(err) {
		t.Errorf("a removed key's link stays: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, first)); !os.IsNotExist(err) {
		t.Errorf("the first payload stays: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 4 { // ..<payload>, ..data, a, c
		t.Errorf("volume directory: %v", names)
	}
}

// A subPath is made in a writable volume when missing; one that a
// symlink leads out of the volume is refused.
func TestSubPath(t *testing.T) {
	vol := t.TempDir()
	got, err := subPath(vol, "logs/app", true)
	if err != nil || !strings.HasSuffix(got, "/logs/app") {
		t.Errorf("a missing subPath: %q %v", got, err)
	}
	if st, err := os.Stat(got); err != nil || !st.IsDir() {
		t.Errorf("the subPath was not made: %v", err)
	}
	if _, err := subPath(vol, "absent", false); err == nil {
		t.Error("a missing subPath of a read-only volume was accepted")
	}
	if err := os.Mkdir(filepath.Join(vol, "inside"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, link := range []string{"/", "../..", "inside/../../.."} {
		os.Remove(filepath.Join(vol, "out"))
		if err := os.Symlink(link, filepath.Join(vol, "out")); err != nil {
			t.Fatal(err)
		}
		if got, err := subPath(vol, "out", true); err == nil || !strings.Contains(err.Error(), "leads outside the volume") {
			t.Errorf("symlink to %s: %q %v, want refused", link, got, err)
		}
	}
	if err := os.Symlink("logs", filepath.Join(vol, "in")); err != nil {
		t.Fatal(err)
	}
	if got, err := subPath(vol, "in/app", false); err != nil || !strings.HasSuffix(got, "/logs/app") {
		t.Errorf("a symlink inside the volume: %q %v", got, err)
	}
}

func TestDownwardValues(t *testing.T) {
	pod := &corev1.Pod{}
	pod.Name, pod.Labels = "p", map[string]string{"b": `say "hi"`, "a": "1"}
	if got, _ := FieldValue(pod, "metadata.labels"); got != "a=\"1\"\nb=\"say \\\"hi\\\"\"" {
		t.Errorf("labels: %q", got)
	}
	if got, _ := FieldValue(pod, "metadata.labels['b']"); got != `say "hi"` {
		t.Errorf("one label: %q", got)
	}
	c := &corev1.Container{Resources: corev1.ResourceRequirements{
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("100Mi")},
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")},
	}}
	alloc := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")}
	for _, tc := range []struct {
		resource, divisor, want string
	}{
		{"limits.memory", "1Mi", "100"},
		{"limits.memory", "", "104857600"},
		{"limits.memory", "1Gi", "1"}, // rounded up
		{"requests.cpu", "1m", "250"},
		{"requests.cpu", "", "1"},
		{"limits.cpu", "", "2"}, // no limit: the node's
		{"requests.memory", "", "0"},
	} {
		ref := &corev1.ResourceFieldSelector{Resource: tc.resource}
		if tc.divisor != "" {
			ref.Divisor = resource.MustParse(tc.divisor)
		}
		if got, err := ResourceValue(c, ref, alloc); err != nil || got != tc.want {
			t.Errorf("%s/%s: %q %v, want %q", tc.resource, tc.divisor, got, err, tc.want)
		}
	}
}

// TestDiskUsage counts allocated blocks as du does: a sparse file's hole
// takes nothing, a hard link is counted once.
func TestDiskUsage(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a"), make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(dir, "a"), filepath.Join(dir, "b")); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(64 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if got := diskUsage(dir); got < 1<<20 || got > 1<<20+64<<10 {
		t.Errorf("usage %d, want 1 MiB and a few blocks", got)
	}
}
