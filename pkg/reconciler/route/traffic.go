package route

import (
	"fmt"

	servingv1 "github.com/knd-dev/knd/pkg/apis/serving/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// Lookup finds revisions and configurations by name in the route's
// namespace; a missing object is (nil, nil).
type Lookup interface {
	Revision(name string) (*servingv1.Revision, error)
	Configuration(name string) (*servingv1.Configuration, error)
}

// TargetError says why a traffic target cannot be served. Failed (False)
// errors beat not-yet-ready (Unknown) ones.
type TargetError struct {
	Reason, Message string
	Failed          bool
}

func (e *TargetError) Error() string { return e.Message }

// Traffic is a route's resolved traffic.
type Traffic struct {
	// Targets are the merged spec targets, each pointing at a revision.
	Targets []servingv1.TrafficTarget
	// Revisions referenced, and the configurations of latestRevision targets.
	Revisions      []string
	Configurations []string
}

// Resolve resolves every spec target to a ready revision, the way
// upstream's traffic.BuildTrafficConfiguration does. All targets are
// evaluated; the worst error is returned with the (partial) result.
func Resolve(route *servingv1.Route, l Lookup) (*Traffic, error) {
	t := &Traffic{}
	var worst *TargetError
	note := func(e *TargetError) {
		if worst == nil || (e.Failed && !worst.Failed) {
			worst = e
		}
	}
	type key struct {
		tag, rev string
		latest   bool
	}
	index := map[key]int{}
	seenRev, seenCfg := map[string]bool{}, map[string]bool{}
	for _, tt := range route.Spec.Traffic {
		target := servingv1.TrafficTarget{Tag: tt.Tag, Percent: ptr.To(ptr.Deref(tt.Percent, 0))}
		switch {
		case tt.RevisionName != "":
			rev, err := l.Revision(tt.RevisionName)
			if err != nil {
				return nil, err
			}
			if e := checkRevision(route, tt.RevisionName, rev); e != nil {
				note(e)
				continue
			}
			target.RevisionName = tt.RevisionName
			target.LatestRevision = ptr.To(false)
		case tt.ConfigurationName != "":
			cfg, err := l.Configuration(tt.ConfigurationName)
			if err != nil {
				return nil, err
			}
			if cfg == nil {
				note(&TargetError{Reason: "ConfigurationMissing", Failed: true,
					Message: fmt.Sprintf("Configuration %q referenced in traffic not found", tt.ConfigurationName)})
				continue
			}
			if !seenCfg[cfg.Name] {
				seenCfg[cfg.Name] = true
				t.Configurations = append(t.Configurations, cfg.Name)
			}
			latest := cfg.Status.LatestReadyRevisionName
			if latest == "" {
				if ready := cfg.Status.GetCondition("Ready"); ready != nil && ready.Status == corev1.ConditionFalse {
					note(&TargetError{Reason: "RevisionMissing", Failed: true,
						Message: fmt.Sprintf("Configuration %q does not have any ready Revision.", cfg.Name)})
				} else {
					note(&TargetError{Reason: "RevisionMissing",
						Message: fmt.Sprintf("Configuration %q is waiting for a Revision to become ready.", cfg.Name)})
				}
				continue
			}
			rev, err := l.Revision(latest)
			if err != nil {
				return nil, err
			}
			if e := checkRevision(route, latest, rev); e != nil {
				note(e)
				continue
			}
			target.RevisionName = latest
			target.LatestRevision = ptr.To(true)
		}
		if !seenRev[target.RevisionName] {
			seenRev[target.RevisionName] = true
			t.Revisions = append(t.Revisions, target.RevisionName)
		}
		k := key{target.Tag, target.RevisionName, *target.LatestRevision}
		if i, ok := index[k]; ok {
			*t.Targets[i].Percent += *target.Percent
			continue
		}
		index[k] = len(t.Targets)
		t.Targets = append(t.Targets, target)
	}
	if worst != nil {
		return t, worst
	}
	return t, nil
}

func checkRevision(route *servingv1.Route, name string, rev *servingv1.Revision) *TargetError {
	if rev == nil {
		return &TargetError{Reason: "RevisionMissing", Failed: true,
			Message: fmt.Sprintf("Revision %q referenced in traffic not found", name)}
	}
	if svc := route.Labels[servingv1.ServiceLabelKey]; svc != "" {
		switch owner := rev.Labels[servingv1.ServiceLabelKey]; {
		case owner == "":
			return &TargetError{Reason: "RevisionNotOwned", Failed: true,
				Message: fmt.Sprintf("Revision %q does not belong to Service %q.", name, svc)}
		case owner != svc:
			return &TargetError{Reason: "RevisionNotOwned", Failed: true,
				Message: fmt.Sprintf("Revision %q belongs to Service %q, not Service %q.", name, owner, svc)}
		}
	}
	ready := rev.Status.GetCondition("Ready")
	switch {
	case ready != nil && ready.Status == corev1.ConditionTrue:
		return nil
	case ready != nil && ready.Status == corev1.ConditionFalse:
		return &TargetError{Reason: "RevisionMissing", Failed: true,
			Message: fmt.Sprintf("Revision %q failed to become ready.", name)}
	}
	return &TargetError{Reason: "RevisionMissing", Message: fmt.Sprintf("Revision %q is not yet ready.", name)}
}
