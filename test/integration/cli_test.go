package integration

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	networkingv1alpha1 "github.com/knd-dev/knd/pkg/apis/networking/v1alpha1"
	servingv1 "github.com/knd-dev/knd/pkg/apis/serving/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files of the CLI tests")

var (
	progressLine = regexp.MustCompile(`^ *\d+\.\d{3}s (.*)$`)
	ageToken     = regexp.MustCompile(`\b(\d+[smhd])+\b`)
	spaces       = regexp.MustCompile(` +`)
	shortDigest  = regexp.MustCompile(`\((at|pinned to) [0-9a-f]{6}\)`)
)

// normalise makes output comparable across runs: progress lines other
// than the last lose their text (which messages appear depends on timing)
// and every time becomes N.NNNs; ages become AGE; image digests DIGEST; runs of spaces after the
// indentation, whose width follows the ages, become one (pkg/cli's unit
// tests check the exact layout).
func normalise(t *testing.T, out string) string {
	t.Helper()
	var lines []string
	for _, line := range strings.Split(out, "\n") {
		if m := progressLine.FindStringSubmatch(line); m != nil {
			if m[1] != "Ready to serve." {
				continue
			}
			line = "N.NNNs Ready to serve."
		}
		line = ageToken.ReplaceAllString(line, "AGE")
		line = shortDigest.ReplaceAllString(line, "($1 DIGEST)")
		body := strings.TrimLeft(line, " ")
		indent := line[:len(line)-len(body)]
		lines = append(lines, indent+strings.TrimRight(spaces.ReplaceAllString(body, " "), " "))
	}
	return strings.Join(lines, "\n")
}

// golden compares normalised output with testdata/cli/NAME.golden
// (rewritten with -update).
func golden(t *testing.T, name, out string) {
	t.Helper()
	got := normalise(t, out)
	path := filepath.Join("testdata", "cli", name+".golden")
	if *updateGolden {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s: output differs from %s\ngot:\n%s\nwant:\n%s\nraw:\n%s", name, path, got, want, out)
	}
}

// kn runs a knd command that must succeed.
func kn(t *testing.T, args ...string) string {
	t.Helper()
	out, err := knd.Knd(t, args...)
	if err != nil {
		t.Fatalf("knd %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// knFails runs a knd command that must fail and returns its output.
func knFails(t *testing.T, args ...string) string {
	t.Helper()
	out, err := knd.Knd(t, args...)
	if err == nil {
		t.Fatalf("knd %s succeeded:\n%s", strings.Join(args, " "), out)
	}
	return out
}

// TestCLIServiceLifecycle drives a service through create, updates,
// traffic splits and tags, describe and list, and delete with the
// kn-style commands, comparing what they print with golden files.
func TestCLIServiceLifecycle(t *testing.T) {
	importTestServer(t)
	ns := namespace(t, "cli")
	in := []string{"-n", ns}

	golden(t, "service-create", kn(t, append([]string{"service", "create", "hello", "--image", testImage, "--env", "GREETING=First", "--scale-min", "1"}, in...)...))
	poll(t, 20*time.Second, "hello answers", func() (bool, string) {
		_, body, err := viaGateway("hello.cli.example.com", "/", nil)
		return strings.HasSuffix(body, " First\n"), fmt.Sprint(body, err)
	})
	golden(t, "service-create-exists", knFails(t, append([]string{"service", "create", "hello", "--image", testImage}, in...)...))

	golden(t, "service-update-env", kn(t, append([]string{"service", "update", "hello", "--env", "GREETING=Second"}, in...)...))
	golden(t, "service-update-bad-split", knFails(t, append([]string{"service", "update", "hello", "--traffic", "hello-00001=50", "--traffic", "hello-00002=60"}, in...)...))
	golden(t, "service-update-split", kn(t, append([]string{"service", "update", "hello",
		"--tag", "hello-00001=green", "--tag", "@latest=blue", "--traffic", "green=40", "--traffic", "@latest=60"}, in...)...))

	poll(t, 20*time.Second, "green tag answers from the first revision", func() (bool, string) {
		_, body, err := viaGateway("green-hello.cli.example.com", "/", nil)
		return strings.HasSuffix(body, " First\n"), fmt.Sprint(body, err)
	})
	// hello-00001 went to zero while it had no traffic (min-scale does not
	// hold unreachable revisions): wait until it is Active again.
	c := typedClient(t)
	poll(t, 30*time.Second, "both revisions fully ready", func() (bool, string) {
		for _, name := range []string{"hello-00001", "hello-00002"} {
			var rev servingv1.Revision
			if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &rev); err != nil {
				return false, err.Error()
			}
			for _, cond := range rev.Status.Conditions {
				if cond.Status != corev1.ConditionTrue {
					return false, fmt.Sprintf("%s: %s %s %s", name, cond.Type, cond.Status, cond.Reason)
				}
			}
		}
		return true, ""
	})
	golden(t, "revision-list", kn(t, append([]string{"revision", "list"}, in...)...))
	golden(t, "route-list", kn(t, append([]string{"route", "list"}, in...)...))
	golden(t, "route-describe", kn(t, append([]string{"route", "describe", "hello"}, in...)...))
	golden(t, "service-list", kn(t, append([]string{"service", "list"}, in...)...))
	golden(t, "service-describe", kn(t, append([]string{"service", "describe", "hello"}, in...)...))
	golden(t, "revision-describe", kn(t, append([]string{"revision", "describe", "hello-00002"}, in...)...))
	if url := kn(t, append([]string{"service", "describe", "hello", "-o", "url"}, in...)...); url != "http://hello.cli.example.com\n" {
		t.Errorf("describe -o url: %q", url)
	}

	if _, err := knd.Clientset(t).CoreV1().Services(ns).Get(testContext(t), "blue-hello", metav1.GetOptions{}); err != nil {
		t.Errorf("the blue tag's Service: %v", err)
	}
	golden(t, "service-update-untag", kn(t, append([]string{"service", "update", "hello", "--untag", "blue", "--traffic", "@latest=100"}, in...)...))
	// The removed tag's placeholder Service goes; the kept tag's stays.
	poll(t, 20*time.Second, "the blue tag's Service deleted", func() (bool, string) {
		_, err := knd.Clientset(t).CoreV1().Services(ns).Get(testContext(t), "blue-hello", metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
	if _, err := knd.Clientset(t).CoreV1().Services(ns).Get(testContext(t), "green-hello", metav1.GetOptions{}); err != nil {
		t.Errorf("the green tag's Service: %v", err)
	}
	golden(t, "service-update-missing-tag", knFails(t, append([]string{"service", "update", "hello", "--untag", "nope"}, in...)...))
	golden(t, "service-export", kn(t, append([]string{"service", "export", "hello"}, in...)...))

	// Both revisions are referenced (hello-00001 by the green tag): nothing to prune.
	poll(t, 20*time.Second, "both revisions active", func() (bool, string) {
		var revs servingv1.RevisionList
		if err := c.List(context.Background(), &revs, client.InNamespace(ns)); err != nil {
			return false, err.Error()
		}
		states := map[string]string{}
		for _, r := range revs.Items {
			states[r.Name] = r.Labels[servingv1.RoutingStateLabelKey]
		}
		return states["hello-00001"] == "active" && states["hello-00002"] == "active", fmt.Sprint(states)
	})
	golden(t, "revision-delete-prune-none", kn(t, append([]string{"revision", "delete", "--prune", "hello"}, in...)...))
	if out := knFails(t, append([]string{"revision", "delete", "--prune-all", "hello-00001"}, in...)...); !strings.Contains(out, "'revision delete' with --prune-all flag requires no arguments") {
		t.Errorf("--prune-all with a name: %s", out)
	}
	golden(t, "revision-delete", kn(t, append([]string{"revision", "delete", "hello-00001"}, in...)...))
	// A new latest revision takes all traffic: the previous one is pruned.
	kn(t, append([]string{"service", "update", "hello", "--untag", "green", "--env", "GREETING=Third"}, in...)...)
	poll(t, 30*time.Second, "hello-00002 no longer routed", func() (bool, string) {
		var rev servingv1.Revision
		err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "hello-00002"}, &rev)
		return err == nil && rev.Labels[servingv1.RoutingStateLabelKey] == "reserve", fmt.Sprint(err, rev.Labels)
	})
	golden(t, "revision-delete-prune", kn(t, append([]string{"revision", "delete", "--prune", "hello"}, in...)...))
	golden(t, "service-delete", kn(t, append([]string{"service", "delete", "hello"}, in...)...))
	golden(t, "service-describe-missing", knFails(t, append([]string{"service", "describe", "hello"}, in...)...))
	golden(t, "service-list-empty", kn(t, append([]string{"service", "list"}, in...)...))
}

// TestCLIDomainMapping maps a domain to a service with `knd domain`.
func TestCLIDomainMapping(t *testing.T) {
	importTestServer(t)
	ns := namespace(t, "cli-domain")
	in := []string{"-n", ns}
	kn(t, append([]string{"service", "create", "web", "--image", testImage, "--env", "GREETING=Mapped"}, in...)...)
	claim := &networkingv1alpha1.ClusterDomainClaim{ObjectMeta: metav1.ObjectMeta{Name: "web.cli.test"},
		Spec: networkingv1alpha1.ClusterDomainClaimSpec{Namespace: ns}}
	c := typedClient(t)
	if err := c.Create(context.Background(), claim); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Delete(context.Background(), claim) })

	golden(t, "domain-create", kn(t, append([]string{"domain", "create", "web.cli.test", "--ref", "ksvc:web"}, in...)...))
	poll(t, 20*time.Second, "the mapped domain answers", func() (bool, string) {
		_, body, err := viaGateway("web.cli.test", "/", nil)
		return strings.HasSuffix(body, " Mapped\n"), fmt.Sprint(body, err)
	})
	golden(t, "domain-list", kn(t, append([]string{"domain", "list"}, in...)...))
	golden(t, "domain-describe", kn(t, append([]string{"domain", "describe", "web.cli.test"}, in...)...))
	kn(t, append([]string{"service", "create", "web2", "--image", testImage, "--env", "GREETING=Remapped"}, in...)...)
	golden(t, "domain-update", kn(t, append([]string{"domain", "update", "web.cli.test", "--ref", "web2"}, in...)...))
	poll(t, 20*time.Second, "the remapped domain answers", func() (bool, string) {
		_, body, err := viaGateway("web.cli.test", "/", nil)
		return strings.HasSuffix(body, " Remapped\n"), fmt.Sprint(body, err)
	})
	golden(t, "domain-delete", kn(t, append([]string{"domain", "delete", "web.cli.test"}, in...)...))
	poll(t, 20*time.Second, "the unmapped domain is unknown", func() (bool, string) {
		code, body, err := viaGateway("web.cli.test", "/", nil)
		return code == 404, fmt.Sprint(code, body, err)
	})
}

// TestCLIServiceCreateForce: `service create --force` replaces an existing
// service, keeping who created it (the webhook refuses a change of the
// creator annotation), as kn does; then kn's output options on it.
func TestCLIServiceCreateForce(t *testing.T) {
	importTestServer(t)
	ns := namespace(t, "cli-force")
	kn(t, "service", "create", "hello", "--image", testImage, "--env", "GREETING=First", "-n", ns)
	out := kn(t, "service", "create", "hello", "--force", "--image", testImage, "--env", "GREETING=Forced", "-n", ns)
	if want := "Service 'hello' replaced to latest revision 'hello-00002' is available at URL:\nhttp://hello.cli-force.example.com\n"; !strings.Contains(out, want) {
		t.Errorf("create --force printed:\n%s\nwant it to contain:\n%s", out, want)
	}
	poll(t, 20*time.Second, "the replaced service answers", func() (bool, string) {
		_, body, err := viaGateway("hello.cli-force.example.com", "/", nil)
		return strings.HasSuffix(body, " Forced\n"), fmt.Sprint(body, err)
	})

	// kn's output options: -o name, --no-headers, no managedFields in yaml.
	if out := kn(t, "service", "list", "-o", "name", "-n", ns); out != "service.serving.knative.dev/hello\n" {
		t.Errorf("service list -o name: %q", out)
	}
	if out := kn(t, "revision", "list", "--no-headers", "-n", ns); strings.Contains(out, "NAME") || !strings.HasPrefix(out, "hello-00002 ") {
		t.Errorf("revision list --no-headers:\n%s", out)
	}
	if out := kn(t, "service", "describe", "hello", "-o", "yaml", "-n", ns); strings.Contains(out, "managedFields") || !strings.Contains(out, "kind: Service") {
		t.Errorf("service describe -o yaml shows managedFields or no kind:\n%s", out)
	}
}
