package node

import (
	"context"
	"fmt"
	"net"
	"strings"

	"github.com/knd-dev/knd/pkg/node/volume"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// containerEnv builds a container's environment as a kubelet does: the
// image's env, then HOSTNAME, envFrom sources, then env entries (with
// $(VAR) references expanded and valueFrom resolved). PORT is then set to
// port, where the serving container listens (0: not set).
func containerEnv(ctx context.Context, client kubernetes.Interface, pod *corev1.Pod, c *corev1.Container, img ImageInfo, port int, facts nodeFacts) ([]string, error) {
	env := newEnvList()
	for _, kv := range img.Env {
		k, v, _ := strings.Cut(kv, "=")
		env.set(k, v)
	}
	env.set("HOSTNAME", pod.Name)
	for _, kv := range apiServiceEnv(facts.apiServer) {
		env.set(kv[0], kv[1])
	}
	res := &sourceCache{ctx: ctx, client: client, ns: pod.Namespace}
	for _, from := range c.EnvFrom {
		data, err := res.envFrom(from)
		if err != nil {
			return nil, err
		}
		for _, k := range sortedKeys(data) {
			env.set(from.Prefix+k, data[k])
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			env.set(e.Name, expand(e.Value, env.lookup))
			continue
		}
		v, ok, err := res.valueFrom(pod, c, e.ValueFrom, facts)
		if err != nil {
			return nil, fmt.Errorf("env %s: %w", e.Name, err)
		}
		if ok {
			env.set(e.Name, v)
		}
	}
	if port > 0 {
		env.set("PORT", fmt.Sprint(port))
	}
	return env.list(), nil
}

// nodeFacts are what the downward API shows that the pod object does not:
// the pod's address and its node's, and the node's allocatable resources.
type nodeFacts struct {
	podIP, hostIP string
	allocatable   corev1.ResourceList
	// apiServer is where the pod reaches the API server (host:port).
	apiServer string
}

// apiServiceEnv are the variables a kubelet gives every container for the
// kubernetes Service (port name https), which in-cluster clients such as
// client-go's read; for the API server at addr (none when addr is "").
func apiServiceEnv(addr string) [][2]string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil
	}
	url := "tcp://" + addr
	p := "KUBERNETES_PORT_" + port + "_TCP"
	return [][2]string{
		{"KUBERNETES_SERVICE_HOST", host}, {"KUBERNETES_SERVICE_PORT", port}, {"KUBERNETES_SERVICE_PORT_HTTPS", port},
		{"KUBERNETES_PORT", url}, {p, url}, {p + "_PROTO", "tcp"}, {p + "_PORT", port}, {p + "_ADDR", host},
	}
}

// argv applies Kubernetes' command/args rules to the image's entrypoint
// and cmd, expanding $(VAR) references from env.
func argv(c *corev1.Container, img ImageInfo, env []string) []string {
	vars := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	lookup := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	var out []string
	switch {
	case len(c.Command) > 0:
		for _, a := range append(append([]string{}, c.Command...), c.Args...) {
			out = append(out, expand(a, lookup))
		}
	case len(c.Args) > 0:
		out = append(out, img.Entrypoint...)
		for _, a := range c.Args {
			out = append(out, expand(a, lookup))
		}
	default:
		out = append(append(out, img.Entrypoint...), img.Cmd...)
	}
	return out
}

// expand replaces $(NAME) with NAME's value when it is defined, and $$ with
// $, leaving unknown references as written (Kubernetes semantics).
func expand(s string, lookup func(string) (string, bool)) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteByte(s[i])
				continue
			}
			name := s[i+2 : i+2+end]
			if v, ok := lookup(name); ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// envList keeps variables in first-definition order.
type envList struct {
	order []string
	vals  map[string]string
}

func newEnvList() *envList { return &envList{vals: map[string]string{}} }

func (e *envList) set(k, v string) {
	if _, ok := e.vals[k]; !ok {
		e.order = append(e.order, k)
	}
	e.vals[k] = v
}

func (e *envList) lookup(k string) (string, bool) { v, ok := e.vals[k]; return v, ok }

func (e *envList) list() []string {
	out := make([]string, 0, len(e.order))
	for _, k := range e.order {
		out = append(out, k+"="+e.vals[k])
	}
	return out
}

// sourceCache reads each ConfigMap and Secret once per container start.
type sourceCache struct {
	ctx        context.Context
	client     kubernetes.Interface
	ns         string
	configMaps map[string]map[string]string
	secrets    map[string]map[string]string
}

func (s *sourceCache) configMap(name string) (map[string]string, error) {
	if d, ok := s.configMaps[name]; ok {
		return d, nil
	}
	cm, err := s.client.CoreV1().ConfigMaps(s.ns).Get(s.ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	if s.configMaps == nil {
		s.configMaps = map[string]map[string]string{}
	}
	s.configMaps[name] = cm.Data
	return cm.Data, nil
}

func (s *sourceCache) secret(name string) (map[string]string, error) {
	if d, ok := s.secrets[name]; ok {
		return d, nil
	}
	sec, err := s.client.CoreV1().Secrets(s.ns).Get(s.ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	d := map[string]string{}
	for k, v := range sec.Data {
		d[k] = string(v)
	}
	for k, v := range sec.StringData {
		d[k] = v
	}
	if s.secrets == nil {
		s.secrets = map[string]map[string]string{}
	}
	s.secrets[name] = d
	return d, nil
}

func (s *sourceCache) envFrom(from corev1.EnvFromSource) (map[string]string, error) {
	switch {
	case from.ConfigMapRef != nil:
		d, err := s.configMap(from.ConfigMapRef.Name)
		if apierrors.IsNotFound(err) && optional(from.ConfigMapRef.Optional) {
			return nil, nil
		}
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("configmap %q not found", from.ConfigMapRef.Name)
		}
		return d, err
	case from.SecretRef != nil:
		d, err := s.secret(from.SecretRef.Name)
		if apierrors.IsNotFound(err) && optional(from.SecretRef.Optional) {
			return nil, nil
		}
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("secret %q not found", from.SecretRef.Name)
		}
		return d, err
	}
	return nil, nil
}

func (s *sourceCache) valueFrom(pod *corev1.Pod, c *corev1.Container, from *corev1.EnvVarSource, facts nodeFacts) (string, bool, error) {
	switch {
	case from.ConfigMapKeyRef != nil:
		ref := from.ConfigMapKeyRef
		d, err := s.configMap(ref.Name)
		if apierrors.IsNotFound(err) {
			if optional(ref.Optional) {
				return "", false, nil
			}
			return "", false, fmt.Errorf("configmap %q not found", ref.Name)
		}
		if err != nil {
			return "", false, err
		}
		v, ok := d[ref.Key]
		if !ok && !optional(ref.Optional) {
			return "", false, fmt.Errorf("couldn't find key %s in ConfigMap %s/%s", ref.Key, s.ns, ref.Name)
		}
		return v, ok, nil
	case from.SecretKeyRef != nil:
		ref := from.SecretKeyRef
		d, err := s.secret(ref.Name)
		if apierrors.IsNotFound(err) {
			if optional(ref.Optional) {
				return "", false, nil
			}
			return "", false, fmt.Errorf("secret %q not found", ref.Name)
		}
		if err != nil {
			return "", false, err
		}
		v, ok := d[ref.Key]
		if !ok && !optional(ref.Optional) {
			return "", false, fmt.Errorf("couldn't find key %s in Secret %s/%s", ref.Key, s.ns, ref.Name)
		}
		return v, ok, nil
	case from.FieldRef != nil:
		v, err := podField(pod, from.FieldRef.FieldPath, facts)
		return v, err == nil, err
	case from.ResourceFieldRef != nil:
		v, err := volume.ResourceValue(c, from.ResourceFieldRef, facts.allocatable)
		return v, err == nil, err
	}
	return "", false, nil
}

func podField(pod *corev1.Pod, path string, facts nodeFacts) (string, error) {
	switch path {
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.podIP", "status.podIPs":
		return facts.podIP, nil
	case "status.hostIP", "status.hostIPs":
		return facts.hostIP, nil
	}
	return volume.FieldValue(pod, path)
}

func optional(b *bool) bool { return b != nil && *b }
