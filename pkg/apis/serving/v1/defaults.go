package v1

import (
	"strconv"

	"github.com/knd-dev/knd/pkg/apis/config"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"
)

// SetDefaults fills a Service as upstream's defaulting webhook does; old is
// nil on create.
func (s *Service) SetDefaults(cfg *config.Config, old *Service) {
	var oldT *RevisionTemplateSpec
	if old != nil {
		oldT = &old.Spec.Template
	}
	s.Spec.Template.SetDefaults(cfg, oldT)
	if len(s.Spec.Traffic) == 0 {
		s.Spec.Traffic = []TrafficTarget{{Percent: ptr.To[int64](100), LatestRevision: ptr.To(true)}}
	}
	s.Spec.RouteSpec.SetDefaults()
}

// SetDefaults fills a Configuration's template; old is nil on create.
func (c *Configuration) SetDefaults(cfg *config.Config, old *Configuration) {
	var oldT *RevisionTemplateSpec
	if old != nil {
		oldT = &old.Spec.Template
	}
	c.Spec.Template.SetDefaults(cfg, oldT)
}

// SetDefaults fills a revision template; old is the template before an
// update, nil on create.
//
// An update that keeps an explicit template name must not change the named
// revision's template. Upstream skips defaulting then, so that changed
// config-defaults do not look like a template change. knd also accepts the
// defaulted template when it equals the old one: kubectl apply replaces the
// whole containers list of a custom resource, dropping the defaults the
// stored template has, and re-applying the same manifest must still work.
func (rt *RevisionTemplateSpec) SetDefaults(cfg *config.Config, old *RevisionTemplateSpec) {
	if old == nil || rt.Name == "" || rt.Name != old.Name {
		rt.Spec.SetDefaults(cfg, old == nil)
		return
	}
	defaulted := rt.DeepCopy()
	defaulted.Spec.SetDefaults(cfg, true)
	if equality.Semantic.DeepEqual(defaulted, old) {
		*rt = *defaulted
	}
}

// SetDefaults fills every traffic target: latestRevision follows whether a
// revision is named, and a missing percent is 0.
func (rs *RouteSpec) SetDefaults() {
	for i := range rs.Traffic {
		tt := &rs.Traffic[i]
		if tt.LatestRevision == nil {
			tt.LatestRevision = ptr.To(tt.RevisionName == "")
		}
		if tt.Percent == nil {
			tt.Percent = ptr.To[int64](0)
		}
	}
}

// SetDefaults fills a revision spec from config-defaults.
func (rs *RevisionSpec) SetDefaults(cfg *config.Config, create bool) {
	d := cfg.Defaults
	if rs.TimeoutSeconds == nil || *rs.TimeoutSeconds == 0 {
		rs.TimeoutSeconds = ptr.To(d.RevisionTimeoutSeconds)
	}
	if rs.ResponseStartTimeoutSeconds == nil && d.RevisionResponseStartTimeoutSeconds != 0 &&
		d.RevisionResponseStartTimeoutSeconds < *rs.TimeoutSeconds {
		rs.ResponseStartTimeoutSeconds = ptr.To(d.RevisionResponseStartTimeoutSeconds)
	}
	if rs.IdleTimeoutSeconds == nil && d.RevisionIdleTimeoutSeconds != 0 && d.RevisionIdleTimeoutSeconds < *rs.TimeoutSeconds {
		rs.IdleTimeoutSeconds = ptr.To(d.RevisionIdleTimeoutSeconds)
	}
	if rs.ContainerConcurrency == nil {
		rs.ContainerConcurrency = ptr.To(d.ContainerConcurrency)
	}
	if create && rs.EnableServiceLinks == nil {
		rs.EnableServiceLinks = d.EnableServiceLinks
	}

	taken := map[string]bool{}
	for _, c := range append(append([]corev1.Container{}, rs.Containers...), rs.InitContainers...) {
		taken[c.Name] = true
	}
	single := len(rs.Containers) == 1
	for i := range rs.Containers {
		c := &rs.Containers[i]
		if c.Name == "" {
			c.Name = d.UserContainerNameTemplate
			if !single || taken[c.Name] {
				c.Name += "-" + strconv.Itoa(i)
			}
		}
		applyResourceDefaults(&c.Resources, d)
		if single || len(c.Ports) > 0 {
			applyProbeDefaults(c)
		}
	}
	for i := range rs.InitContainers {
		if rs.InitContainers[i].Name == "" {
			rs.InitContainers[i].Name = d.InitContainerNameTemplate + "-" + strconv.Itoa(i)
		}
	}
	// Volumes other than emptyDir, PVC and ephemeral are mounted read-only.
	writable := map[string]bool{}
	for _, v := range rs.Volumes {
		if v.EmptyDir != nil || v.PersistentVolumeClaim != nil || v.Ephemeral != nil {
			writable[v.Name] = true
		}
	}
	for i := range rs.Containers {
		for j := range rs.Containers[i].VolumeMounts {
			m := &rs.Containers[i].VolumeMounts[j]
			if !writable[m.Name] {
				m.ReadOnly = true
			}
		}
	}
}

func applyResourceDefaults(r *corev1.ResourceRequirements, d *config.Defaults) {
	for _, item := range []struct {
		list *corev1.ResourceList
		name corev1.ResourceName
		def  *resource.Quantity
	}{
		{&r.Requests, corev1.ResourceCPU, d.RevisionCPURequest},
		{&r.Requests, corev1.ResourceMemory, d.RevisionMemoryRequest},
		{&r.Requests, corev1.ResourceEphemeralStorage, d.RevisionEphemeralStorageRequest},
		{&r.Limits, corev1.ResourceCPU, d.RevisionCPULimit},
		{&r.Limits, corev1.ResourceMemory, d.RevisionMemoryLimit},
		{&r.Limits, corev1.ResourceEphemeralStorage, d.RevisionEphemeralStorageLimit},
	} {
		if item.def == nil {
			continue
		}
		if *item.list == nil {
			*item.list = corev1.ResourceList{}
		}
		if _, ok := (*item.list)[item.name]; !ok {
			(*item.list)[item.name] = item.def.DeepCopy()
		}
	}
}

func applyProbeDefaults(c *corev1.Container) {
	if c.ReadinessProbe == nil {
		c.ReadinessProbe = &corev1.Probe{}
	}
	p := c.ReadinessProbe
	if p.TCPSocket == nil && p.HTTPGet == nil && p.Exec == nil && p.GRPC == nil {
		p.TCPSocket = &corev1.TCPSocketAction{}
	}
	if p.SuccessThreshold == 0 {
		p.SuccessThreshold = 1
	}
	if p.PeriodSeconds != 0 {
		if p.FailureThreshold == 0 {
			p.FailureThreshold = 3
		}
		if p.TimeoutSeconds == 0 {
			p.TimeoutSeconds = 1
		}
	}
	for _, probe := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe, c.StartupProbe} {
		if probe != nil && probe.GRPC != nil && probe.GRPC.Service == nil {
			probe.GRPC.Service = ptr.To("")
		}
	}
}
