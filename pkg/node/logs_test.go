package node

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLineWriterStampsWholeLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	log, err := createLog(path)
	if err != nil {
		t.Fatal(err)
	}
	out, errs := log.stream("stdout"), log.stream("stderr")
	long := strings.Repeat("x", 16<<10+1)
	for _, w := range []struct {
		to   io.Writer
		text string
	}{
		{out, "one\ntwo\nthr"}, {errs, "oops\n"}, {out, "ee\n"}, {out, long}, {out, "\n"},
	} {
		if n, err := w.to.Write([]byte(w.text)); n != len(w.text) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", w.text, n, err)
		}
	}
	if err := log.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"stdout one", "stdout two", "stderr oops", "stdout three", "stdout " + long, "stdout "}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), b)
	}
	for i, line := range lines {
		stamp, rest, _ := strings.Cut(line, " ")
		if _, err := time.Parse(time.RFC3339Nano, stamp); err != nil {
			t.Errorf("line %d: time %q: %v", i, stamp, err)
		}
		if rest != want[i] {
			t.Errorf("line %d = %.40q, want %.40q", i, rest, want[i])
		}
	}
}
