package integration

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestPodsCallTheAPI: a pod reaches the API server as an in-cluster client
// does, by its KUBERNETES_SERVICE_* variables or kubernetes.default.svc,
// trusting the service account's CA (the server's certificate names the
// address pods see) and with its token; RBAC then decides, with the API
// server's own words.
func TestPodsCallTheAPI(t *testing.T) {
	sandboxedServer(t)
	importTestServer(t)
	ns := namespace(t, "api-access")
	cs := knd.Clientset(t)
	ctx := testContext(t)
	if _, err := cs.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "pod-reader"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "pod-reader"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "pod-reader"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "default", Namespace: ns}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, testPod("caller", nil, nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, time.Minute, "pod ready", func() (bool, string) { return len(readyPods(t, ns, "app=caller")) == 1, "" })
	pod := readyPods(t, ns, "app=caller")[0]

	if host := ask(t, &pod, "/env?k=KUBERNETES_SERVICE_HOST"); host == "" || host == pod.Status.PodIP || strings.HasPrefix(host, "127.") {
		t.Errorf("KUBERNETES_SERVICE_HOST %q: want the host's address on the pod network", host)
	}
	if port := ask(t, &pod, "/env?k=KUBERNETES_SERVICE_PORT"); port != "443" {
		t.Errorf("KUBERNETES_SERVICE_PORT %q, want 443", port)
	}
	kube := func(path, host string) string {
		return ask(t, &pod, "/kube?path="+url.QueryEscape(path)+"&host="+url.QueryEscape(host))
	}
	own := "/api/v1/namespaces/" + ns + "/pods/" + pod.Name
	for _, host := range []string{"", "kubernetes.default.svc", "kubernetes.default"} {
		// The API access volume's token comes shortly after the start.
		poll(t, 30*time.Second, "GET of its own pod via "+host, func() (bool, string) {
			got := kube(own, host)
			return strings.HasPrefix(got, "200 ") && strings.Contains(got, `"name":"`+pod.Name+`"`), got
		})
	}
	want := fmt.Sprintf(`403 {"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"secrets is forbidden: `+
		`User \"system:serviceaccount:%s:default\" cannot list resource \"secrets\" in API group \"\" in the namespace \"%s\"",`+
		`"reason":"Forbidden","details":{"kind":"secrets"},"code":403}`, ns, ns)
	if got := strings.TrimSpace(kube("/api/v1/namespaces/"+ns+"/secrets", "")); got != want {
		t.Errorf("listing secrets without a role:\n%s\nwant\n%s", got, want)
	}
	// The API server's other ports stay out of reach: only the relay's.
	relayHost := ask(t, &pod, "/env?k=KUBERNETES_SERVICE_HOST")
	if got := ask(t, &pod, "/dial?addr="+url.QueryEscape(fmt.Sprintf("%s:%d", relayHost, knd.Ports(t).API))); got == "ok" {
		t.Errorf("the API server's own port is reachable from a pod at %s", relayHost)
	}
}
