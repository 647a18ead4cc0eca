package v1

import "time"

// ProgressDeadline is how long a revision may take to reach its initial
// scale: its serving.knative.dev/progress-deadline annotation (validated by
// the webhook), else def, config-deployment's progress-deadline.
func ProgressDeadline(annotations map[string]string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(annotations[ProgressDeadlineAnnotation]); err == nil && d > 0 {
		return d
	}
	return def
}
