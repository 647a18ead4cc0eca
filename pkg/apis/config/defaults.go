package config

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/resource"
)

// Defaults is config-defaults.
type Defaults struct {
	RevisionTimeoutSeconds              int64
	MaxRevisionTimeoutSeconds           int64
	RevisionResponseStartTimeoutSeconds int64
	RevisionIdleTimeoutSeconds          int64
	ContainerConcurrency                int64
	ContainerConcurrencyMaxLimit        int64
	AllowContainerConcurrencyZero       bool
	UserContainerNameTemplate           string
	InitContainerNameTemplate           string
	EnableServiceLinks                  *bool

	RevisionCPURequest, RevisionCPULimit                           *resource.Quantity
	RevisionMemoryRequest, RevisionMemoryLimit                     *resource.Quantity
	RevisionEphemeralStorageRequest, RevisionEphemeralStorageLimit *resource.Quantity
}

// NewDefaults parses config-defaults.
func NewDefaults(data map[string]string) (*Defaults, error) {
	no := false
	d := &Defaults{
		RevisionTimeoutSeconds:        300,
		MaxRevisionTimeoutSeconds:     600,
		ContainerConcurrencyMaxLimit:  1000,
		AllowContainerConcurrencyZero: true,
		UserContainerNameTemplate:     "user-container",
		InitContainerNameTemplate:     "init-container",
		EnableServiceLinks:            &no,
	}
	p := &parser{data: data}
	p.int64(&d.RevisionTimeoutSeconds, "revision-timeout-seconds")
	p.int64(&d.MaxRevisionTimeoutSeconds, "max-revision-timeout-seconds")
	p.int64(&d.RevisionResponseStartTimeoutSeconds, "revision-response-start-timeout-seconds")
	p.int64(&d.RevisionIdleTimeoutSeconds, "revision-idle-timeout-seconds")
	p.int64(&d.ContainerConcurrency, "container-concurrency")
	p.int64(&d.ContainerConcurrencyMaxLimit, "container-concurrency-max-limit")
	p.bool(&d.AllowContainerConcurrencyZero, "allow-container-concurrency-zero")
	p.string(&d.UserContainerNameTemplate, "container-name-template")
	p.string(&d.InitContainerNameTemplate, "init-container-name-template")
	if v, ok := p.lookup("enable-service-links"); ok {
		switch v {
		case "true", "false":
			b := v == "true"
			d.EnableServiceLinks = &b
		case "default":
			d.EnableServiceLinks = nil
		default:
			p.fail(fmt.Errorf("failed to parse \"enable-service-links\": %q is not one of true, false, default", v))
		}
	}
	for key, target := range map[string]**resource.Quantity{
		"revision-cpu-request":               &d.RevisionCPURequest,
		"revision-cpu-limit":                 &d.RevisionCPULimit,
		"revision-memory-request":            &d.RevisionMemoryRequest,
		"revision-memory-limit":              &d.RevisionMemoryLimit,
		"revision-ephemeral-storage-request": &d.RevisionEphemeralStorageRequest,
		"revision-ephemeral-storage-limit":   &d.RevisionEphemeralStorageLimit,
	} {
		if v, ok := p.lookup(key); ok {
			q, err := resource.ParseQuantity(v)
			if err != nil {
				p.fail(fmt.Errorf("failed to parse %q: %w", key, err))
				continue
			}
			*target = &q
		}
	}
	if p.err != nil {
		return nil, p.err
	}
	if _, ok := data["revision-response-start-timeout-seconds"]; !ok {
		d.RevisionResponseStartTimeoutSeconds = d.RevisionTimeoutSeconds
	}
	switch {
	case d.RevisionTimeoutSeconds > d.MaxRevisionTimeoutSeconds:
		return nil, fmt.Errorf("revision-timeout-seconds (%d) cannot be greater than max-revision-timeout-seconds (%d)",
			d.RevisionTimeoutSeconds, d.MaxRevisionTimeoutSeconds)
	case d.RevisionResponseStartTimeoutSeconds > d.RevisionTimeoutSeconds:
		return nil, fmt.Errorf("revision-response-start-timeout-seconds (%d) cannot be greater than revision-timeout-seconds (%d)",
			d.RevisionResponseStartTimeoutSeconds, d.RevisionTimeoutSeconds)
	case d.RevisionIdleTimeoutSeconds > d.RevisionTimeoutSeconds:
		return nil, fmt.Errorf("revision-idle-timeout-seconds (%d) cannot be greater than revision-timeout-seconds (%d)",
			d.RevisionIdleTimeoutSeconds, d.RevisionTimeoutSeconds)
	case d.RevisionTimeoutSeconds < 0 || d.MaxRevisionTimeoutSeconds < 0:
		return nil, fmt.Errorf("revision-timeout-seconds (%d) and max-revision-timeout-seconds (%d) must be non-negative",
			d.RevisionTimeoutSeconds, d.MaxRevisionTimeoutSeconds)
	case d.ContainerConcurrencyMaxLimit < 1:
		return nil, fmt.Errorf("container-concurrency-max-limit (%d) must be at least 1", d.ContainerConcurrencyMaxLimit)
	case d.ContainerConcurrency < 0 || d.ContainerConcurrency > d.ContainerConcurrencyMaxLimit:
		return nil, fmt.Errorf("container-concurrency (%d) must be in [0, %d]", d.ContainerConcurrency, d.ContainerConcurrencyMaxLimit)
	}
	return d, nil
}
