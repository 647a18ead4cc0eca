package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServerSideApply: kubectl apply --server-side of an ordinary Service
// (a container without a name, a port without a protocol) creates and then
// updates it, and neither it nor a client-side apply leaves the API
// server failing to update managed fields.
func TestServerSideApply(t *testing.T) {
	importTestServer(t)
	ns := namespace(t, "ssa")
	manifest := func(greeting string) string {
		return `apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: applied, namespace: ` + ns + `}
spec:
  template:
    spec:
      containers:
      - image: ` + testImage + `
        ports: [{containerPort: 8080}]
        env: [{name: GREETING, value: ` + greeting + `}]
`
	}
	for _, tc := range []struct{ greeting, want string }{{"first", "serverside-applied"}, {"second", "serverside-applied"}} {
		out, err := knd.Kubectl(t, manifest(tc.greeting), "apply", "--server-side", "-f", "-")
		if err != nil || !strings.Contains(out, "service.serving.knative.dev/applied "+tc.want) {
			t.Fatalf("kubectl apply --server-side (%s): %v\n%s", tc.greeting, err, out)
		}
	}
	c := typedClient(t)
	waitService(t, c, ns, "applied", "the second apply's revision ready", readyAt("applied-00002"))
	if out, err := knd.Kubectl(t, strings.Replace(manifest("third"), "name: applied", "name: client-applied", 1), "apply", "-f", "-"); err != nil {
		t.Fatalf("client-side apply: %v\n%s", err, out)
	}
	log, err := os.ReadFile(filepath.Join(knd.DataDir, "knd.log"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(log), "failed to update managedFields") {
		t.Error("knd.log: the API server failed to update managed fields")
	}
}
