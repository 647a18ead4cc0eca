// Package reconciler holds what the serving reconcilers share: child names
// and the resync on configuration changes.
package reconciler

import (
	"crypto/md5"
	"encoding/hex"
)

// ChildName is upstream's kmeta.ChildName: parent+suffix, and when that is
// longer than 63 characters, the parent cut short with its md5 appended.
func ChildName(parent, suffix string) string {
	const longest = 63
	if len(parent)+len(suffix) <= longest {
		return parent + suffix
	}
	sum := md5.Sum([]byte(parent))
	h := hex.EncodeToString(sum[:])
	keep := max(longest-len(h)-len(suffix), 0)
	return parent[:min(keep, len(parent))] + h + suffix
}
