package gateway

import (
	"sort"
	"testing"
)

func podNames(r *revision) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var names []string
	for _, p := range r.pods {
		names = append(names, p.name+"@"+p.addr)
	}
	sort.Strings(names)
	return names
}

// The node agent's word on a pod beats the API's for a while: a pod it
// says is ready is used before the API shows it, and one it says is
// stopping gets no requests though the API still shows it ready.
func TestAgentReadinessBeatsTheAPI(t *testing.T) {
	r := newRevision("ns", "rev", newMetrics())
	r.podReadiness("a", "127.0.0.1:1000", true)
	if got := podNames(r); len(got) != 1 || got[0] != "a@127.0.0.1:1000" {
		t.Fatalf("after the agent's word: %v", got)
	}
	r.setPods(nil) // the API does not show it ready yet
	if got := podNames(r); len(got) != 1 {
		t.Fatalf("an API resync dropped the pod the agent reported ready: %v", got)
	}
	r.setPods(map[string]string{"a": "127.0.0.1:1000", "b": "127.0.0.1:1001"})
	r.podReadiness("b", "127.0.0.1:1001", false)
	r.setPods(map[string]string{"a": "127.0.0.1:1000", "b": "127.0.0.1:1001"})
	if got := podNames(r); len(got) != 1 || got[0] != "a@127.0.0.1:1000" {
		t.Errorf("a stopping pod came back from the API: %v", got)
	}
}
