package volume

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// file is one file of an API-data volume (configMap, secret, downwardAPI,
// projected): its content and mode.
type file struct {
	data []byte
	mode os.FileMode
}

// dataLink names the payload a volume directory shows. A container reads
// a key through <dir>/<key> → ..data/<key> → ..<timestamp>/<key>, so
// replacing the payload is one rename of ..data: a reader sees the old
// files or the new ones, never a mix (the kubelet's atomic writer).
const dataLink = "..data"

// writeAtomic makes dir show exactly files (paths relative to dir), and
// says whether anything changed.
func writeAtomic(dir string, files map[string]file) (bool, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	old, _ := os.Readlink(filepath.Join(dir, dataLink))
	if old != "" && sameFiles(filepath.Join(dir, old), files) {
		return false, nil
	}
	payload, err := os.MkdirTemp(dir, ".."+time.Now().UTC().Format("2006_01_02_15_04_05."))
	if err != nil {
		return false, err
	}
	if err := os.Chmod(payload, 0o755); err != nil {
		return false, err
	}
	for p, f := range files {
		full := filepath.Join(payload, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return false, err
		}
		if err := os.WriteFile(full, f.data, f.mode); err != nil {
			return false, err
		}
		// WriteFile's mode is cut by the umask; the volume's is exact.
		if err := os.Chmod(full, f.mode); err != nil {
			return false, err
		}
	}
	tmp := filepath.Join(dir, "..data_tmp")
	_ = os.Remove(tmp)
	if err := os.Symlink(filepath.Base(payload), tmp); err != nil {
		return false, err
	}
	if err := os.Rename(tmp, filepath.Join(dir, dataLink)); err != nil {
		return false, err
	}
	// The top-level names link into ..data; names no longer there go.
	want := map[string]bool{}
	for p := range files {
		want[strings.Split(filepath.ToSlash(p), "/")[0]] = true
	}
	for name := range want {
		link := filepath.Join(dir, name)
		if _, err := os.Lstat(link); os.IsNotExist(err) {
			if err := os.Symlink(filepath.Join(dataLink, name), link); err != nil {
				return false, err
			}
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false, err
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "..") && !want[e.Name()] {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	if old != "" {
		_ = os.RemoveAll(filepath.Join(dir, old))
	}
	return true, nil
}

// sameFiles says whether payload holds exactly files, with their modes.
func sameFiles(payload string, files map[string]file) bool {
	n := 0
	err := filepath.WalkDir(payload, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		rel, _ := filepath.Rel(payload, p)
		want, ok := files[rel]
		if !ok {
			return fmt.Errorf("extra file %s", rel)
		}
		info, err := d.Info()
		if err != nil || info.Mode().Perm() != want.mode.Perm() {
			return fmt.Errorf("mode of %s", rel)
		}
		have, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(have, want.data) {
			return fmt.Errorf("content of %s", rel)
		}
		return nil
	})
	return err == nil && n == len(files)
}
