package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Disabled retention is -1, as upstream.
const disabledRetention = -1

// GC is config-gc.
type GC struct {
	RetainSinceCreateTime     time.Duration
	RetainSinceLastActiveTime time.Duration
	MinNonActiveRevisions     int64
	MaxNonActiveRevisions     int64
}

// NewGC parses config-gc.
func NewGC(data map[string]string) (*GC, error) {
	g := &GC{
		RetainSinceCreateTime:     48 * time.Hour,
		RetainSinceLastActiveTime: 15 * time.Hour,
		MinNonActiveRevisions:     20,
		MaxNonActiveRevisions:     1000,
	}
	p := &parser{data: data}
	for key, target := range map[string]*time.Duration{
		"retain-since-create-time": &g.RetainSinceCreateTime, "retain-since-last-active-time": &g.RetainSinceLastActiveTime,
	} {
		if v, ok := p.lookup(key); ok {
			if strings.EqualFold(v, "disabled") {
				*target = disabledRetention
				continue
			}
			d, err := time.ParseDuration(v)
			if err != nil {
				return nil, fmt.Errorf("failed to parse %q: %w", key, err)
			}
			if d < 0 {
				return nil, fmt.Errorf("%s must be non-negative, was %v", key, d)
			}
			*target = d
		}
	}
	p.int64(&g.MinNonActiveRevisions, "min-non-active-revisions")
	if v, ok := p.lookup("max-non-active-revisions"); ok {
		if strings.EqualFold(v, "disabled") {
			g.MaxNonActiveRevisions = disabledRetention
		} else if n, err := strconv.ParseInt(v, 10, 64); err != nil {
			return nil, fmt.Errorf("failed to parse \"max-non-active-revisions\": %w", err)
		} else {
			g.MaxNonActiveRevisions = n
		}
	}
	if p.err != nil {
		return nil, p.err
	}
	if g.MinNonActiveRevisions < 0 {
		return nil, fmt.Errorf("min-non-active-revisions must be non-negative, was: %d", g.MinNonActiveRevisions)
	}
	if g.MaxNonActiveRevisions >= 0 && g.MinNonActiveRevisions > g.MaxNonActiveRevisions {
		return nil, fmt.Errorf("max-non-active-revisions(%d) must be >= min-non-active-revisions(%d)",
			g.MaxNonActiveRevisions, g.MinNonActiveRevisions)
	}
	return g, nil
}

// Deployment is config-deployment.
type Deployment struct {
	ProgressDeadline               time.Duration
	DigestResolutionTimeout        time.Duration
	RegistriesSkippingTagResolving map[string]bool
	QueueSidecarImage              string
}

// NewDeployment parses config-deployment.
func NewDeployment(data map[string]string) (*Deployment, error) {
	d := &Deployment{
		ProgressDeadline:        600 * time.Second,
		DigestResolutionTimeout: 10 * time.Second,
	}
	registries := "kind.local,ko.local,dev.local"
	p := &parser{data: data}
	p.duration(&d.ProgressDeadline, "progress-deadline", "progressDeadline")
	p.duration(&d.DigestResolutionTimeout, "digest-resolution-timeout", "digestResolutionTimeout")
	p.string(&registries, "registries-skipping-tag-resolving", "registriesSkippingTagResolving")
	p.string(&d.QueueSidecarImage, "queue-sidecar-image", "queueSidecarImage")
	if p.err != nil {
		return nil, p.err
	}
	d.RegistriesSkippingTagResolving = map[string]bool{}
	for _, r := range strings.Split(registries, ",") {
		if r = strings.TrimSpace(r); r != "" {
			d.RegistriesSkippingTagResolving[r] = true
		}
	}
	if d.ProgressDeadline <= 0 {
		return nil, fmt.Errorf("progress-deadline cannot be a non-positive duration, was %v", d.ProgressDeadline)
	}
	if d.ProgressDeadline.Truncate(time.Second) != d.ProgressDeadline {
		return nil, fmt.Errorf("progress-deadline must be rounded to a whole second, was: %v", d.ProgressDeadline)
	}
	if d.DigestResolutionTimeout <= 0 {
		return nil, fmt.Errorf("digest-resolution-timeout cannot be a non-positive duration, was %v", d.DigestResolutionTimeout)
	}
	return d, nil
}
