package integration

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	servingv1 "github.com/knd-dev/knd/pkg/apis/serving/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestTutorialTrafficSplit replays the traffic-splitting tutorial with the
// sample apps knd puts in its image store under the tutorial's image names:
// three versions, then 0/40/60 with a staging tag.
func TestTutorialTrafficSplit(t *testing.T) {
	root, _ := filepath.Abs("../..")
	files, _ := filepath.Glob(filepath.Join(root, "examples", "traffic-split", "*.yaml"))
	c := typedClient(t)
	for i, f := range files {
		if out, err := knd.Kubectl(t, "", "apply", "-f", f); err != nil {
			t.Fatalf("apply %s: %v\n%s", f, err, out)
		}
		if i == 0 {
			continue // the namespace
		}
		rev := fmt.Sprintf("helloworld-go-%05d", min(i, 3))
		waitService(t, c, "knative-demo", "helloworld-go", "step "+filepath.Base(f), func(s *servingv1.Service) bool {
			return readyAt(rev)(s)
		})
	}
	var svc servingv1.Service
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "knative-demo", Name: "helloworld-go"}, &svc); err != nil {
		t.Fatal(err)
	}
	if got := trafficString(svc.Status.Traffic); !strings.Contains(got, "{tag=staging rev=helloworld-go-00001 latest=false percent=0 url=http://staging-helloworld-go.knative-demo.example.com}") {
		t.Errorf("traffic %s", got)
	}
	poll(t, 30*time.Second, "staging answers", func() (bool, string) {
		_, body, err := viaGateway("staging-helloworld-go.knative-demo.example.com", "/", nil)
		return body == "Hello Go Sample v1!\n", fmt.Sprint(body, err)
	})
	counts := map[string]int{}
	for range 500 {
		code, body, err := viaGateway("helloworld-go.knative-demo.example.com", "/", nil)
		if err != nil || code != 200 {
			t.Fatalf("%d %q %v", code, body, err)
		}
		counts[body]++
	}
	if v2 := counts["Hello Go Sample v2!\n"]; v2 < 160 || v2 > 240 || counts["Hello Go Sample v3!\n"]+v2 != 500 {
		t.Errorf("40/60 split over 500 requests: %v", counts)
	}
	// Leave the namespace as found: TestExamplesApply applies these files again.
	if err := c.Delete(context.Background(), &svc); err != nil {
		t.Fatal(err)
	}
	poll(t, time.Minute, "tutorial service deleted", func() (bool, string) {
		var revs servingv1.RevisionList
		err := c.List(context.Background(), &revs, client.InNamespace("knative-demo"))
		return err == nil && len(revs.Items) == 0 && c.Get(context.Background(), client.ObjectKeyFromObject(&svc), &servingv1.Service{}) != nil, fmt.Sprint(len(revs.Items))
	})
}
