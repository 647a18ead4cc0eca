package gateway

import (
	"math/rand/v2"
	"net/url"
	"strings"

	"github.com/knd-dev/knd/pkg/apis/duck"
	servingv1 "github.com/knd-dev/knd/pkg/apis/serving/v1"
	servingv1beta1 "github.com/knd-dev/knd/pkg/apis/serving/v1beta1"
	corev1 "k8s.io/api/core/v1"
)

// routeEntry is one Route's traffic, by traffic name ("" = default, then
// one per tag).
type routeEntry struct {
	namespace, name string
	splits          map[string][]servingv1.Split
	// sticky: a cookie keeps each client on its revision (sticky.go).
	sticky bool
}

// hostEntry is what a Host header selects: a route and a traffic name.
type hostEntry struct {
	route *routeEntry
	name  string
	// rewriteHost, for a domain mapping, is the Host the pod sees (the
	// target's cluster-local name); the original goes in K-Original-Host.
	rewriteHost string
}

// table maps hosts to routes; it is rebuilt whenever a Route changes and
// swapped in atomically.
type table struct {
	hosts map[string]hostEntry
	// revisions are the revisions that exist, for VirtualServices that
	// name one as their destination.
	revisions map[revisionKey]bool
}

// buildTable indexes every route with traffic in its status. A route whose
// traffic cannot be resolved keeps serving its last good traffic, because
// the route reconciler leaves status.traffic in place.
func buildTable(routes []servingv1.Route, mappings []servingv1beta1.DomainMapping) *table {
	t := &table{hosts: map[string]hostEntry{}}
	for i := range routes {
		rt := &routes[i]
		if len(rt.Status.Traffic) == 0 {
			continue
		}
		e := &routeEntry{namespace: rt.Namespace, name: rt.Name,
			splits: servingv1.Splits(rt.Status.Traffic),
			sticky: rt.Annotations[servingv1.SessionAffinityAnnotation] == "cookie"}
		add := func(host, name string) {
			if host != "" {
				t.hosts[strings.ToLower(host)] = hostEntry{route: e, name: name}
			}
		}
		add(hostOf(rt.Status.URL), "")
		for _, h := range clusterLocalHosts(rt.Name, rt.Namespace) {
			add(h, "")
		}
		for _, tt := range rt.Status.Traffic {
			if tt.Tag == "" {
				continue
			}
			add(hostOf(tt.URL), tt.Tag)
			if h := hostOf(tt.URL); h != "" {
				// The tag's cluster-local names: the first label of its host
				// is the tag's service name (tag-template).
				for _, l := range clusterLocalHosts(strings.SplitN(h, ".", 2)[0], rt.Namespace) {
					if _, taken := t.hosts[l]; !taken {
						add(l, tt.Tag)
					}
				}
			}
		}
	}
	// A ready domain mapping serves its domain like the target's
	// cluster-local name.
	for _, dm := range mappings {
		if !conditionTrue(dm.Status.Status, "DomainClaimed") || !conditionTrue(dm.Status.Status, "ReferenceResolved") {
			continue
		}
		ns := dm.Spec.Ref.Namespace
		if ns == "" {
			ns = dm.Namespace
		}
		target := dm.Spec.Ref.Name + "." + ns + ".svc.cluster.local"
		if e, ok := t.hosts[target]; ok {
			e.rewriteHost = target
			t.hosts[strings.ToLower(dm.Name)] = e
		}
	}
	return t
}

func conditionTrue(st duck.Status, typ duck.ConditionType) bool {
	c := st.GetCondition(typ)
	return c != nil && c.Status == corev1.ConditionTrue
}

// clusterLocalHosts are the in-cluster names of a route: <n>.<ns>,
// <n>.<ns>.svc and <n>.<ns>.svc.cluster.local.
func clusterLocalHosts(name, ns string) []string {
	base := name + "." + ns
	return []string{base, base + ".svc", base + ".svc.cluster.local"}
}

func hostOf(u string) string {
	if u == "" {
		return ""
	}
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return p.Hostname()
}

// pick chooses a revision by percent.
func pick(splits []servingv1.Split) string {
	var total int64
	for _, s := range splits {
		total += s.Percent
	}
	if total <= 0 {
		return ""
	}
	n := rand.Int64N(total)
	for _, s := range splits {
		if n < s.Percent {
			return s.Revision
		}
		n -= s.Percent
	}
	return splits[len(splits)-1].Revision
}
