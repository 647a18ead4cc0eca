package volume

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"syscall"

	corev1 "k8s.io/api/core/v1"
)

// OverLimit says which of the pod's disk emptyDirs uses more than its
// sizeLimit, in the kubelet's eviction message, or "" when none does. (A
// memory emptyDir is a tmpfs of that size: writes past it fail.)
func (p *Pod) OverLimit(pod *corev1.Pod) string {
	for _, v := range pod.Spec.Volumes {
		ed := v.EmptyDir
		if ed == nil || ed.Medium == corev1.StorageMediumMemory || ed.SizeLimit == nil || ed.SizeLimit.IsZero() {
			continue
		}
		p.mu.Lock()
		dir := p.paths[v.Name]
		p.mu.Unlock()
		if dir == "" {
			continue
		}
		if used := diskUsage(dir); used > ed.SizeLimit.Value() {
			return fmt.Sprintf("Usage of EmptyDir volume %q exceeds the limit %q. ", v.Name, ed.SizeLimit.String())
		}
	}
	return ""
}

// HasDiskLimits says whether the pod has a disk emptyDir with a sizeLimit
// (one OverLimit must measure).
func HasDiskLimits(pod *corev1.Pod) bool {
	for _, v := range pod.Spec.Volumes {
		if ed := v.EmptyDir; ed != nil && ed.Medium != corev1.StorageMediumMemory && ed.SizeLimit != nil && !ed.SizeLimit.IsZero() {
			return true
		}
	}
	return false
}

// diskUsage is the space the files under dir take on disk, as du counts it
// (allocated blocks, each hard-linked file once); what cannot be read is
// not counted.
func diskUsage(dir string) int64 {
	var total int64
	seen := map[uint64]bool{}
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		if st.Nlink > 1 && !d.IsDir() {
			if seen[st.Ino] {
				return nil
			}
			seen[st.Ino] = true
		}
		total += st.Blocks * 512
		return nil
	})
	return total
}
