package config

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"text/template"

	"sigs.k8s.io/yaml"
)

// Network is config-network.
type Network struct {
	IngressClass                  string
	CertificateClass              string
	DomainTemplate                string
	TagTemplate                   string
	RolloutDurationSeconds        int
	AutocreateClusterDomainClaims bool
	DefaultExternalScheme         string
	HTTPProtocol                  string
	ExternalDomainTLS             bool
	ClusterLocalDomainTLS         bool

	domainTemplate *template.Template
	tagTemplate    *template.Template
}

// DomainTemplateValues are what domain-template may use.
type DomainTemplateValues struct {
	Name, Namespace, Domain string
	Annotations, Labels     map[string]string
}

// NewNetwork parses config-network.
func NewNetwork(data map[string]string) (*Network, error) {
	n := &Network{
		IngressClass:          "istio.ingress.networking.knative.dev",
		CertificateClass:      "cert-manager.certificate.networking.knative.dev",
		DomainTemplate:        "{{.Name}}.{{.Namespace}}.{{.Domain}}",
		TagTemplate:           "{{.Tag}}-{{.Name}}",
		DefaultExternalScheme: "http",
		HTTPProtocol:          "Enabled",
	}
	p := &parser{data: data}
	p.string(&n.IngressClass, "ingress-class", "ingress.class")
	p.string(&n.CertificateClass, "certificate-class", "certificate.class")
	p.string(&n.DomainTemplate, "domain-template")
	p.string(&n.TagTemplate, "tag-template")
	p.bool(&n.AutocreateClusterDomainClaims, "autocreate-cluster-domain-claims")
	p.string(&n.DefaultExternalScheme, "default-external-scheme")
	p.string(&n.HTTPProtocol, "http-protocol")
	if v, ok := p.lookup("rollout-duration"); ok {
		d, err := strconv.Atoi(v)
		if err != nil {
			p.fail(fmt.Errorf("failed to parse \"rollout-duration\": %w", err))
		} else if d < 0 {
			p.fail(fmt.Errorf("rollout-duration must be non-negative, was %d", d))
		}
		n.RolloutDurationSeconds = d
	}
	for key, target := range map[string]*bool{"external-domain-tls": &n.ExternalDomainTLS, "cluster-local-domain-tls": &n.ClusterLocalDomainTLS} {
		if v, ok := p.lookup(key); ok {
			switch strings.ToLower(v) {
			case "enabled":
				*target = true
			case "disabled", "":
			default:
				p.fail(fmt.Errorf("%s with value: %q is not a valid value", key, v))
			}
		}
	}
	if p.err != nil {
		return nil, p.err
	}
	switch strings.ToLower(n.HTTPProtocol) {
	case "enabled", "disabled", "redirected":
	default:
		return nil, fmt.Errorf("http-protocol %s in config-network ConfigMap is not supported", n.HTTPProtocol)
	}
	switch n.DefaultExternalScheme {
	case "http", "https":
	default:
		return nil, fmt.Errorf("default-external-scheme %q is not one of http, https", n.DefaultExternalScheme)
	}
	var err error
	if n.domainTemplate, err = template.New("domain-template").Parse(n.DomainTemplate); err != nil {
		return nil, err
	}
	if _, err := n.Host(DomainTemplateValues{Name: "foo", Namespace: "bar", Domain: "baz.com"}); err != nil {
		return nil, fmt.Errorf("domain-template: %w", err)
	}
	if !strings.Contains(n.DomainTemplate, "{{.Name}}") || !strings.Contains(n.DomainTemplate, "{{.Namespace}}") {
		return nil, fmt.Errorf("domain-template must contain {{.Name}} and {{.Namespace}}")
	}
	if n.tagTemplate, err = template.New("tag-template").Parse(n.TagTemplate); err != nil {
		return nil, err
	}
	return n, nil
}

// Host applies domain-template.
func (n *Network) Host(v DomainTemplateValues) (string, error) {
	var buf bytes.Buffer
	if err := n.domainTemplate.Execute(&buf, v); err != nil {
		return "", err
	}
	return buf.String(), nil
}

// TagName applies tag-template to a route name and a tag.
func (n *Network) TagName(name, tag string) (string, error) {
	var buf bytes.Buffer
	err := n.tagTemplate.Execute(&buf, struct{ Name, Tag string }{name, tag})
	return buf.String(), err
}

// Domain is config-domain: domains with optional label selectors.
type Domain struct {
	Domains map[string]map[string]string
}

// NewDomain parses config-domain.
func NewDomain(data map[string]string) (*Domain, error) {
	d := &Domain{Domains: map[string]map[string]string{}}
	for domain, value := range data {
		var sel struct {
			Selector map[string]string `json:"selector"`
		}
		if err := yaml.Unmarshal([]byte(value), &sel); err != nil {
			return nil, fmt.Errorf("failed to parse selector of domain %q: %w", domain, err)
		}
		d.Domains[strings.TrimSpace(domain)] = sel.Selector
	}
	return d, nil
}

// ClusterLocalDomain is what routes get when no domain matches.
const ClusterLocalDomain = "svc.cluster.local"

// LookupDomain returns the domain for a route with the given labels: the
// matching selector with the most labels wins, ties go to the smaller name.
func (d *Domain) LookupDomain(labels map[string]string) string {
	best, bestSpecificity := "", -1
	for domain, selector := range d.Domains {
		matches := true
		for k, v := range selector {
			if labels[k] != v {
				matches = false
				break
			}
		}
		if !matches {
			continue
		}
		if len(selector) > bestSpecificity || (len(selector) == bestSpecificity && domain < best) {
			best, bestSpecificity = domain, len(selector)
		}
	}
	if best == "" {
		return ClusterLocalDomain
	}
	return best
}
