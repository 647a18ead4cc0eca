// Package initbin holds knd-sandbox-init, built by make into this
// directory (see README.md) and embedded in knd: the process runtime's
// sandbox init, and the docker runtime's pod network holder (its pause
// mode).
package initbin

import (
	"embed"
	"errors"
)

//go:embed *
var files embed.FS

// Name is the program's file name.
const Name = "knd-sandbox-init"

// Binary returns the program, or why this knd has none.
func Binary() ([]byte, error) {
	b, err := files.ReadFile(Name)
	if err != nil {
		return nil, errors.New("this knd was built without knd-sandbox-init (build it with make)")
	}
	return b, nil
}
