package node

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestExpand(t *testing.T) {
	vars := map[string]string{"A": "1", "B": "two"}
	lookup := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	for in, want := range map[string]string{
		"plain":      "plain",
		"$(A)":       "1",
		"x$(B)y$(A)": "xtwoy1",
		"$(MISSING)": "$(MISSING)",
		"$$(A)":      "$(A)",
		"cost $5":    "cost $5",
		"$(unclosed": "$(unclosed",
		"trailing $": "trailing $",
	} {
		if got := expand(in, lookup); got != want {
			t.Errorf("expand(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestArgv(t *testing.T) {
	img := ImageInfo{Entrypoint: []string{"/app"}, Cmd: []string{"--default"}}
	env := []string{"PORT=1234"}
	for _, tc := range []struct {
		name    string
		command []string
		args    []string
		want    []string
	}{
		{"image entrypoint and cmd", nil, nil, []string{"/app", "--default"}},
		{"args replace cmd", nil, []string{"--port=$(PORT)"}, []string{"/app", "--port=1234"}},
		{"command replaces both", []string{"/bin/sh", "-c"}, []string{"echo $(PORT)"}, []string{"/bin/sh", "-c", "echo 1234"}},
	} {
		c := &corev1.Container{Command: tc.command, Args: tc.args}
		if got := argv(c, img, env); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: argv = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestAPIServiceVariables: the kubernetes Service's variables as a kubelet
// writes them, which client-go's in-cluster configuration reads.
func TestAPIServiceVariables(t *testing.T) {
	got := map[string]string{}
	for _, kv := range apiServiceEnv("198.18.0.1:443") {
		got[kv[0]] = kv[1]
	}
	want := map[string]string{
		"KUBERNETES_SERVICE_HOST": "198.18.0.1", "KUBERNETES_SERVICE_PORT": "443", "KUBERNETES_SERVICE_PORT_HTTPS": "443",
		"KUBERNETES_PORT": "tcp://198.18.0.1:443", "KUBERNETES_PORT_443_TCP": "tcp://198.18.0.1:443",
		"KUBERNETES_PORT_443_TCP_PROTO": "tcp", "KUBERNETES_PORT_443_TCP_PORT": "443", "KUBERNETES_PORT_443_TCP_ADDR": "198.18.0.1",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
	if env := apiServiceEnv(""); env != nil {
		t.Errorf("no API server, yet %v", env)
	}
}
