package config

import (
	"fmt"
	"strings"
)

// Flag is the value of a feature: Enabled, Disabled or Allowed.
type Flag string

const (
	Enabled          Flag = "Enabled"
	Disabled         Flag = "Disabled"
	Allowed          Flag = "Allowed"
	AllowRootBounded Flag = "AllowRootBounded"
)

// Features is config-features: flags keyed by their ConfigMap key.
type Features struct {
	flags map[string]Flag
}

// Feature keys knd reads.
const (
	MultiContainer               = "multi-container"
	TagHeaderBasedRouting        = "tag-header-based-routing"
	PodSpecInitContainers        = "kubernetes.podspec-init-containers"
	PodSpecVolumesEmptyDir       = "kubernetes.podspec-volumes-emptydir"
	PodSpecPersistentVolumeClaim = "kubernetes.podspec-persistent-volume-claim"
	PodSpecFieldRef              = "kubernetes.podspec-fieldref"
	PodSpecSecurityContext       = "kubernetes.podspec-securitycontext"
	ContainerSpecAddCapabilities = "kubernetes.containerspec-addcapabilities"
	SecurePodDefaults            = "secure-pod-defaults"
	PodSpecHostPath              = "kubernetes.podspec-hostpath"
	PodSpecDryRun                = "kubernetes.podspec-dryrun"
	AutoDetectHTTP2              = "autodetect-http2"
	QueueProxyResourceDefaults   = "queueproxy.resource-defaults"
)

// PodSpecFieldFlags gates PodSpec fields that are off unless their feature
// is Enabled, keyed by the field's JSON name.
var PodSpecFieldFlags = map[string]string{
	"affinity":                  "kubernetes.podspec-affinity",
	"topologySpreadConstraints": "kubernetes.podspec-topologyspreadconstraints",
	"dnsPolicy":                 "kubernetes.podspec-dnspolicy",
	"dnsConfig":                 "kubernetes.podspec-dnsconfig",
	"hostAliases":               "kubernetes.podspec-hostaliases",
	"nodeSelector":              "kubernetes.podspec-nodeselector",
	"runtimeClassName":          "kubernetes.podspec-runtimeclassname",
	"priorityClassName":         "kubernetes.podspec-priorityclassname",
	"schedulerName":             "kubernetes.podspec-schedulername",
	"tolerations":               "kubernetes.podspec-tolerations",
	"initContainers":            PodSpecInitContainers,
	"securityContext":           PodSpecSecurityContext,
	"shareProcessNamespace":     "kubernetes.podspec-shareprocessnamespace",
	"hostIPC":                   "kubernetes.podspec-hostipc",
	"hostPID":                   "kubernetes.podspec-hostpid",
	"hostNetwork":               "kubernetes.podspec-hostnetwork",
	"hostname":                  "kubernetes.podspec-hostname",
	"volumes":                   "", // always allowed; volume kinds are checked one by one
}

var featureDefaults = map[string]Flag{
	MultiContainer:         Enabled,
	PodSpecVolumesEmptyDir: Enabled,
	SecurePodDefaults:      Disabled,
}

// NewFeatures parses config-features.
func NewFeatures(data map[string]string) (*Features, error) {
	f := &Features{flags: map[string]Flag{}}
	for k, v := range data {
		flag, ok := parseFlag(v)
		if !ok {
			return nil, fmt.Errorf("failed to parse %q: %q is not one of Enabled, Disabled, Allowed", k, v)
		}
		f.flags[k] = flag
	}
	return f, nil
}

func parseFlag(v string) (Flag, bool) {
	for _, flag := range []Flag{Enabled, Disabled, Allowed, AllowRootBounded} {
		if strings.EqualFold(strings.TrimSpace(v), string(flag)) {
			return flag, true
		}
	}
	return "", false
}

// Get returns the flag for key, with upstream's default.
func (f *Features) Get(key string) Flag {
	if v, ok := f.flags[key]; ok {
		return v
	}
	if v, ok := featureDefaults[key]; ok {
		return v
	}
	return Disabled
}

// Enabled reports whether key is Enabled.
func (f *Features) Enabled(key string) bool { return f.Get(key) == Enabled }
