// Package config parses and validates the knative-serving ConfigMaps
// (config-defaults, config-features, config-autoscaler, config-network,
// config-domain, config-gc, config-deployment). Defaults and error messages
// are upstream's.
package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Namespace is where the ConfigMaps live.
const Namespace = "knative-serving"

// ConfigMap names.
const (
	DefaultsName   = "config-defaults"
	FeaturesName   = "config-features"
	AutoscalerName = "config-autoscaler"
	NetworkName    = "config-network"
	DomainName     = "config-domain"
	GCName         = "config-gc"
	DeploymentName = "config-deployment"
)

// Config is every ConfigMap, parsed.
type Config struct {
	Defaults   *Defaults
	Features   *Features
	Autoscaler *Autoscaler
	Network    *Network
	Domain     *Domain
	GC         *GC
	Deployment *Deployment
}

// Default returns the configuration an empty knative-serving namespace means.
func Default() *Config {
	c := &Config{}
	for name, data := range DefaultData() {
		if err := c.set(name, data); err != nil {
			panic(fmt.Sprintf("default %s: %v", name, err))
		}
	}
	return c
}

// Parsers by ConfigMap name; each returns an error with upstream's text.
var parsers = map[string]func(c *Config, data map[string]string) error{
	DefaultsName:   func(c *Config, d map[string]string) (err error) { c.Defaults, err = NewDefaults(d); return },
	FeaturesName:   func(c *Config, d map[string]string) (err error) { c.Features, err = NewFeatures(d); return },
	AutoscalerName: func(c *Config, d map[string]string) (err error) { c.Autoscaler, err = NewAutoscaler(d); return },
	NetworkName:    func(c *Config, d map[string]string) (err error) { c.Network, err = NewNetwork(d); return },
	DomainName:     func(c *Config, d map[string]string) (err error) { c.Domain, err = NewDomain(d); return },
	GCName:         func(c *Config, d map[string]string) (err error) { c.GC, err = NewGC(d); return },
	DeploymentName: func(c *Config, d map[string]string) (err error) { c.Deployment, err = NewDeployment(d); return },
}

// Names lists the ConfigMaps knd reads.
func Names() []string {
	return []string{DefaultsName, FeaturesName, AutoscalerName, NetworkName, DomainName, GCName, DeploymentName}
}

// Known reports whether name is a ConfigMap knd reads.
func Known(name string) bool { _, ok := parsers[name]; return ok }

// Validate parses a ConfigMap of one of the known names.
func Validate(cm *corev1.ConfigMap) error {
	return (&Config{}).set(cm.Name, cm.Data)
}

// Apply replaces one part of the configuration with a parsed ConfigMap.
// Invalid data leaves the configuration as it was.
func (c *Config) Apply(cm *corev1.ConfigMap) error {
	return c.set(cm.Name, cm.Data)
}

func (c *Config) set(name string, data map[string]string) error {
	parse, ok := parsers[name]
	if !ok {
		return fmt.Errorf("unknown ConfigMap %q", name)
	}
	// _example holds documentation only, as upstream.
	clean := make(map[string]string, len(data))
	for k, v := range data {
		if k != "_example" {
			clean[k] = v
		}
	}
	next := *c
	if err := parse(&next, clean); err != nil {
		return err
	}
	*c = next
	return nil
}

// Copy returns a shallow copy that can be changed without changing c.
func (c *Config) Copy() *Config { cp := *c; return &cp }

// DefaultData is the data knd writes into the ConfigMaps on first start.
func DefaultData() map[string]map[string]string {
	return map[string]map[string]string{
		DefaultsName:   {},
		FeaturesName:   {},
		AutoscalerName: {},
		NetworkName:    {},
		// Upstream leaves config-domain empty (URLs under svc.cluster.local);
		// knd serves external URLs, so it starts with example.com as the
		// tutorials do.
		DomainName:     {"example.com": ""},
		GCName:         {},
		DeploymentName: {},
	}
}

// parser reads typed values out of ConfigMap data, remembering the first error.
type parser struct {
	data map[string]string
	err  error
}

func (p *parser) fail(err error) {
	if p.err == nil {
		p.err = err
	}
}

func (p *parser) lookup(keys ...string) (string, bool) {
	for _, k := range keys {
		if v, ok := p.data[k]; ok {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

func (p *parser) int64(target *int64, keys ...string) {
	if v, ok := p.lookup(keys...); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			p.fail(fmt.Errorf("failed to parse %q: %w", keys[0], err))
			return
		}
		*target = n
	}
}

func (p *parser) int32(target *int32, keys ...string) {
	n := int64(*target)
	p.int64(&n, keys...)
	*target = int32(n)
}

func (p *parser) float64(target *float64, keys ...string) {
	if v, ok := p.lookup(keys...); ok {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			p.fail(fmt.Errorf("failed to parse %q: %w", keys[0], err))
			return
		}
		*target = f
	}
}

func (p *parser) bool(target *bool, keys ...string) {
	if v, ok := p.lookup(keys...); ok {
		*target = strings.EqualFold(v, "true")
	}
}

func (p *parser) duration(target *time.Duration, keys ...string) {
	if v, ok := p.lookup(keys...); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			p.fail(fmt.Errorf("failed to parse %q: %w", keys[0], err))
			return
		}
		*target = d
	}
}

func (p *parser) string(target *string, keys ...string) {
	if v, ok := p.lookup(keys...); ok {
		*target = v
	}
}
