// Package apis holds what every knd API type shares: field errors rendered
// exactly as upstream Knative renders them, so that users see the same
// admission messages.
package apis

import (
	"fmt"
	"sort"
	"strings"
)

// CurrentField names the field an error is reported on before it is
// placed with ViaField.
const CurrentField = ""

// FieldError is a validation error on one or more field paths. Errors combine
// with Also and are placed under their parent with ViaField and ViaIndex.
type FieldError struct {
	Message string
	Paths   []string
	// Details is printed on the line after the message.
	Details string

	errors []FieldError
}

// Also combines errors; nil receivers and arguments are fine.
func (fe *FieldError) Also(errs ...*FieldError) *FieldError {
	var out *FieldError
	if fe != nil {
		copied := *fe
		out = &copied
	}
	for _, e := range errs {
		if e == nil {
			continue
		}
		if out == nil {
			out = &FieldError{}
		}
		out.errors = append(out.errors, e.flatten()...)
	}
	return out
}

// ViaField places the error under the given parent fields.
func (fe *FieldError) ViaField(prefix ...string) *FieldError {
	if fe == nil {
		return nil
	}
	out := &FieldError{Message: fe.Message, Details: fe.Details}
	for _, p := range fe.Paths {
		out.Paths = append(out.Paths, joinPath(append(append([]string{}, prefix...), p)))
	}
	for _, e := range fe.errors {
		out = out.Also(e.ViaField(prefix...))
	}
	return out
}

// ViaIndex places the error under element index of a list.
func (fe *FieldError) ViaIndex(index int) *FieldError {
	return fe.ViaField(fmt.Sprintf("[%d]", index))
}

// ViaFieldIndex places the error under element index of list field.
func (fe *FieldError) ViaFieldIndex(field string, index int) *FieldError {
	return fe.ViaIndex(index).ViaField(field)
}

// ViaKey places the error under key of a map.
func (fe *FieldError) ViaKey(key string) *FieldError {
	return fe.ViaField(fmt.Sprintf("[%s]", key))
}

// ViaFieldKey places the error under key of map field.
func (fe *FieldError) ViaFieldKey(field, key string) *FieldError {
	return fe.ViaKey(key).ViaField(field)
}

func (fe *FieldError) flatten() []FieldError {
	var out []FieldError
	if fe.Message != "" {
		out = append(out, FieldError{Message: fe.Message, Paths: fe.Paths, Details: fe.Details})
	}
	for _, e := range fe.errors {
		out = append(out, e.flatten()...)
	}
	return out
}

// Error renders every error as "<message>: <path>, <path>" (plus a line of
// details), merging errors with the same message and details, sorted by
// message.
func (fe *FieldError) Error() string {
	merged := map[string]*FieldError{}
	var keys []string
	for _, e := range fe.flatten() {
		k := e.Message + "\x00" + e.Details
		if m, ok := merged[k]; ok {
			m.Paths = append(m.Paths, e.Paths...)
			continue
		}
		copied := e
		copied.Paths = append([]string{}, e.Paths...)
		merged[k] = &copied
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := merged[keys[i]], merged[keys[j]]
		if a.Message == b.Message {
			return a.Details < b.Details
		}
		return a.Message < b.Message
	})
	lines := make([]string, 0, len(keys))
	for _, k := range keys {
		e := merged[k]
		sort.Strings(e.Paths)
		line := fmt.Sprintf("%s: %s", e.Message, strings.Join(e.Paths, ", "))
		if e.Details != "" {
			line += "\n" + e.Details
		}
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n")
}

// joinPath joins segments with ".", attaching "[i]" segments to the segment
// before them and dropping empty ones.
func joinPath(segments []string) string {
	var out []string
	for _, segment := range segments {
		for _, part := range strings.Split(segment, ".") {
			switch {
			case part == CurrentField:
			case len(out) > 0 && strings.HasPrefix(part, "[") && strings.HasSuffix(part, "]"):
				out[len(out)-1] += part
			default:
				out = append(out, part)
			}
		}
	}
	return strings.Join(out, ".")
}

// ErrMissingField: a required field is absent.
func ErrMissingField(paths ...string) *FieldError {
	return &FieldError{Message: "missing field(s)", Paths: paths}
}

// ErrDisallowedFields: fields that must not be set.
func ErrDisallowedFields(paths ...string) *FieldError {
	return &FieldError{Message: "must not set the field(s)", Paths: paths}
}

// ErrInvalidValue: a field has a value that is not allowed.
func ErrInvalidValue(value any, path string, details ...string) *FieldError {
	return &FieldError{Message: fmt.Sprint("invalid value: ", value), Paths: []string{path}, Details: strings.Join(details, ", ")}
}

// ErrInvalidArrayValue: element index of field has a value that is not allowed.
func ErrInvalidArrayValue(value any, field string, index int) *FieldError {
	return ErrInvalidValue(value, CurrentField).ViaFieldIndex(field, index)
}

// ErrGeneric: any message on the given paths.
func ErrGeneric(message string, paths ...string) *FieldError {
	return &FieldError{Message: message, Paths: paths}
}

// ErrMultipleOneOf: more than one of mutually exclusive fields is set.
func ErrMultipleOneOf(paths ...string) *FieldError {
	return &FieldError{Message: "expected exactly one, got both", Paths: paths}
}

// ErrMissingOneOf: none of the fields of which one is required is set.
func ErrMissingOneOf(paths ...string) *FieldError {
	return &FieldError{Message: "expected exactly one, got neither", Paths: paths}
}

// ErrOutOfBoundsValue: value is outside [lower, upper].
func ErrOutOfBoundsValue(value, lower, upper any, path string) *FieldError {
	return &FieldError{Message: fmt.Sprintf("expected %v <= %v <= %v", lower, value, upper), Paths: []string{path}}
}

// ErrInvalidKeyName: a map key (label, annotation) is not allowed.
func ErrInvalidKeyName(key, path string, details ...string) *FieldError {
	return &FieldError{Message: fmt.Sprintf("invalid key name %q", key), Paths: []string{path}, Details: strings.Join(details, ", ")}
}
