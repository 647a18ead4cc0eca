package cli

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/knd-dev/knd/pkg/apis/autoscaling"
	servingv1 "github.com/knd-dev/knd/pkg/apis/serving/v1"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"
)

const (
	userImageAnnotation      = "client.knative.dev/user-image"
	revisionNameInstructions = "Revision name to set. Must start with the service name and a dash as a prefix. Empty revision name will result in the server generating a name for the revision."
)

// serviceFlags are the flags of `service create` and `service update` that
// edit the Service and its revision template.
type serviceFlags struct {
	image            string
	env              []string
	port             string
	cmd              []string
	args             []string
	concurrencyLimit int
	scale            string
	scaleMin         int
	scaleMax         int
	scaleInit        int
	scaleTarget      int
	scaleUtilization int
	scaleWindow      string
	scaleMetric      string
	annotations      []string
	labels           []string
	revisionName     string
	limits           []string
	requests         []string
	pullPolicy       string
	serviceAccount   string
	timeout          int64
	clusterLocal     bool
	mounts           []string
	volumes          []string
}

func (f *serviceFlags) addFlags(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.image, "image", "", "Image to run.")
	fl.StringArrayVarP(&f.env, "env", "e", nil, "Environment variable to set. NAME=value; you may provide this flag any number of times to set multiple environment variables. To unset, specify the environment variable name followed by a \"-\" (e.g., NAME-).")
	fl.StringVarP(&f.port, "port", "p", "", "The port where application listens on, in the format 'NAME:PORT', where 'NAME' is optional. Examples: '--port h2c:8080' , '--port 8080'.")
	fl.StringArrayVar(&f.cmd, "cmd", nil, "Specify command to be used as entrypoint instead of default one. Example: --cmd /app/start or --cmd sh --cmd /app/start.sh or --cmd /app/start --arg myArg to pass additional arguments.")
	fl.StringArrayVar(&f.args, "arg", nil, "Add argument to the container command. Example: --arg myArg1 --arg --myArg2 --arg myArg3=3. You can use this flag multiple times.")
	fl.IntVar(&f.concurrencyLimit, "concurrency-limit", 0, "Hard Limit of concurrent requests to be processed by a single replica.")
	fl.StringVar(&f.scale, "scale", "", "Set the Minimum and Maximum number of replicas. You can use this flag to set both to a single value, or set a range with min/max values, or set either min or max values without specifying the other. Example: --scale 5 (scale-min = 5, scale-max = 5) or --scale 1..5 (scale-min = 1, scale-max = 5) or --scale 1.. (scale-min = 1, scale-max = unchanged) or --scale ..5 (scale-min = unchanged, scale-max = 5)")
	fl.IntVar(&f.scaleMin, "scale-min", 0, "Minimum number of replicas.")
	fl.IntVar(&f.scaleMax, "scale-max", 0, "Maximum number of replicas.")
	fl.IntVar(&f.scaleInit, "scale-init", 0, "Initial number of replicas with which a service starts. Can be 0 or a positive integer.")
	fl.IntVar(&f.scaleTarget, "scale-target", 0, "Number of in-flight requests per replica that triggers a scale-up.")
	fl.IntVar(&f.scaleUtilization, "scale-utilization", 0, "Percentage of concurrent requests utilization before scaling up.")
	fl.StringVar(&f.scaleWindow, "scale-window", "", "Duration to look back for making auto-scaling decisions. The service is scaled to zero if no request was received in during that time. (eg: 10s)")
	fl.StringVar(&f.scaleMetric, "scale-metric", "", "Set the name of the metric the PodAutoscaler should scale on. Example: --scale-metric rps (to scale on rps) or --scale-metric concurrency (to scale on concurrency).")
	fl.StringArrayVarP(&f.annotations, "annotation", "a", nil, "Annotations to apply to the service and revision template. To unset, specify the annotation name followed by a \"-\" (e.g., NAME-).")
	fl.StringArrayVarP(&f.labels, "label", "l", nil, "Labels to set for both Service and Revision. To unset, specify the label name followed by a \"-\" (e.g., NAME-).")
	fl.StringVar(&f.revisionName, "revision-name", "", revisionNameInstructions)
	fl.StringSliceVar(&f.limits, "limit", nil, "The resource requirement limits for this Service. For example, 'cpu=100m,memory=256Mi'. You can use this flag multiple times.")
	fl.StringSliceVar(&f.requests, "request", nil, "The resource requirement requests for this Service. For example, 'cpu=100m,memory=256Mi'. You can use this flag multiple times.")
	fl.StringVar(&f.pullPolicy, "pull-policy", "", "Image pull policy. Valid values (case insensitive): Always | Never | IfNotPresent")
	fl.StringVar(&f.serviceAccount, "service-account", "", "Service account name to set. An empty argument (\"\") clears the service account.")
	fl.Int64Var(&f.timeout, "timeout", 0, "Duration in seconds that the request routing layer will wait for a request delivered to a container to begin replying")
	fl.StringArrayVar(&f.mounts, "mount", nil, mountUsage)
	fl.StringArrayVar(&f.volumes, "volume", nil, volumeUsage)
	fl.BoolVar(&f.clusterLocal, "cluster-local", false, "Specify that the service be private. (--no-cluster-local will make the service publicly available)")
}

// keyValues parses K=V (set) and K- (unset) pairs, in order.
func keyValues(pairs []string, what string) (set [][2]string, unset []string, err error) {
	for _, p := range pairs {
		if k, v, ok := strings.Cut(p, "="); ok && k != "" {
			set = append(set, [2]string{k, v})
			continue
		}
		if strings.HasSuffix(p, "-") && len(p) > 1 {
			unset = append(unset, strings.TrimSuffix(p, "-"))
			continue
		}
		return nil, nil, fmt.Errorf("Invalid %s: %s", what, p)
	}
	return set, unset, nil
}

// applyMap sets and unsets keys of *m.
func applyMap(m *map[string]string, set [][2]string, unset []string) {
	for _, k := range unset {
		delete(*m, k)
	}
	if len(set) > 0 && *m == nil {
		*m = map[string]string{}
	}
	for _, kv := range set {
		(*m)[kv[0]] = kv[1]
	}
}

// apply edits svc as the flags say; only flags the user gave change anything.
func (f *serviceFlags) apply(cmd *cobra.Command, svc *servingv1.Service) error {
	changed := cmd.Flags().Changed
	tmpl := &svc.Spec.Template
	if len(tmpl.Spec.Containers) == 0 {
		tmpl.Spec.Containers = []corev1.Container{{}}
	}
	ctr := &tmpl.Spec.Containers[0]

	if changed("image") {
		ctr.Image = f.image
		applyMap(&tmpl.Annotations, [][2]string{{userImageAnnotation, f.image}}, nil)
	}
	if changed("env") {
		set, unset, err := keyValues(f.env, "env")
		if err != nil {
			return err
		}
		ctr.Env = editEnv(ctr.Env, set, unset)
	}
	if changed("port") {
		name, number, found := strings.Cut(f.port, ":")
		if !found {
			name, number = "", f.port
		}
		port, err := strconv.ParseInt(number, 10, 32)
		if err != nil {
			return fmt.Errorf("The port specification '%s' is not valid. Please provide in the format 'NAME:PORT', where 'NAME' is optional. Examples: '--port h2c:8080' , '--port 8080'.", f.port)
		}
		ctr.Ports = []corev1.ContainerPort{{Name: name, ContainerPort: int32(port)}}
	}
	if changed("cmd") {
		ctr.Command = f.cmd
	}
	if changed("mount") || changed("volume") {
		if err := editVolumes(&tmpl.Spec.PodSpec, ctr, f.volumes, f.mounts); err != nil {
			return err
		}
	}
	if changed("arg") {
		ctr.Args = f.args
	}
	if changed("concurrency-limit") {
		tmpl.Spec.ContainerConcurrency = ptr.To(int64(f.concurrencyLimit))
	}
	if changed("timeout") {
		tmpl.Spec.TimeoutSeconds = ptr.To(f.timeout)
	}
	if changed("service-account") {
		tmpl.Spec.ServiceAccountName = f.serviceAccount
	}
	if changed("pull-policy") {
		policy, err := pullPolicy(f.pullPolicy)
		if err != nil {
			return err
		}
		ctr.ImagePullPolicy = policy
	}
	for _, r := range []struct {
		flag   string
		values []string
		target *corev1.ResourceList
	}{{"limit", f.limits, &ctr.Resources.Limits}, {"request", f.requests, &ctr.Resources.Requests}} {
		if !changed(r.flag) {
			continue
		}
		if err := editResources(r.target, r.values); err != nil {
			return err
		}
	}

	scale := [][2]string{}
	if changed("scale") {
		switch {
		case changed("scale-max"):
			return fmt.Errorf("only --scale or --scale-max can be specified")
		case changed("scale-min"):
			return fmt.Errorf("only --scale or --scale-min can be specified")
		}
		bounds, err := scaleRange(f.scale)
		if err != nil {
			return err
		}
		scale = append(scale, bounds...)
	}
	for _, s := range []struct {
		flag, key string
		value     int
	}{
		{"scale-min", autoscaling.MinScaleAnnotation.Canonical(), f.scaleMin}, {"scale-max", autoscaling.MaxScaleAnnotation.Canonical(), f.scaleMax},
		{"scale-init", autoscaling.InitialScaleAnnotation.Canonical(), f.scaleInit}, {"scale-target", autoscaling.TargetAnnotation.Canonical(), f.scaleTarget},
		{"scale-utilization", autoscaling.TargetUtilizationPercentageAnnotation.Canonical(), f.scaleUtilization},
	} {
		if changed(s.flag) {
			scale = append(scale, [2]string{s.key, strconv.Itoa(s.value)})
		}
	}
	if changed("scale-window") {
		scale = append(scale, [2]string{autoscaling.WindowAnnotation.Canonical(), f.scaleWindow})
	}
	if changed("scale-metric") {
		scale = append(scale, [2]string{autoscaling.MetricAnnotation.Canonical(), f.scaleMetric})
	}
	applyMap(&tmpl.Annotations, scale, nil)

	if changed("annotation") {
		set, unset, err := keyValues(f.annotations, "annotation")
		if err != nil {
			return err
		}
		applyMap(&tmpl.Annotations, set, unset)
		// Autoscaling settings belong to revisions only.
		var serviceSet [][2]string
		for _, kv := range set {
			if !strings.HasPrefix(kv[0], autoscaling.GroupName+"/") {
				serviceSet = append(serviceSet, kv)
			}
		}
		applyMap(&svc.Annotations, serviceSet, unset)
	}
	if changed("label") {
		set, unset, err := keyValues(f.labels, "label")
		if err != nil {
			return err
		}
		applyMap(&svc.Labels, set, unset)
		applyMap(&tmpl.Labels, set, unset)
	}
	if changed("cluster-local") {
		if f.clusterLocal {
			applyMap(&svc.Labels, [][2]string{{servingv1.VisibilityLabelKey, servingv1.VisibilityClusterLocal}}, nil)
		} else {
			applyMap(&svc.Labels, nil, []string{servingv1.VisibilityLabelKey})
		}
	}

	// A revision name is the service name, a dash, and the suffix; kn adds the
	// prefix when it is missing.
	if changed("revision-name") {
		name := f.revisionName
		if name != "" && !strings.HasPrefix(name, svc.Name+"-") {
			name = svc.Name + "-" + name
		}
		tmpl.Name = name
	}
	return nil
}

// editEnv sets and removes variables, keeping the order of those that stay.
func editEnv(env []corev1.EnvVar, set [][2]string, unset []string) []corev1.EnvVar {
	removed := map[string]bool{}
	for _, k := range unset {
		removed[k] = true
	}
	out := []corev1.EnvVar{}
	for _, e := range env {
		if !removed[e.Name] {
			out = append(out, e)
		}
	}
	for _, kv := range set {
		replaced := false
		for i := range out {
			if out[i].Name == kv[0] {
				out[i] = corev1.EnvVar{Name: kv[0], Value: kv[1]}
				replaced = true
			}
		}
		if !replaced {
			out = append(out, corev1.EnvVar{Name: kv[0], Value: kv[1]})
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// editResources applies "cpu=100m,memory=256Mi" and "cpu-" entries.
func editResources(list *corev1.ResourceList, values []string) error {
	set, unset, err := keyValues(values, "resource")
	if err != nil {
		return err
	}
	for _, k := range unset {
		delete(*list, corev1.ResourceName(k))
	}
	for _, kv := range set {
		q, err := resource.ParseQuantity(kv[1])
		if err != nil {
			return fmt.Errorf("cannot parse %s quantity %q: %w", kv[0], kv[1], err)
		}
		if *list == nil {
			*list = corev1.ResourceList{}
		}
		(*list)[corev1.ResourceName(kv[0])] = q
	}
	return nil
}

func pullPolicy(s string) (corev1.PullPolicy, error) {
	for _, p := range []corev1.PullPolicy{corev1.PullAlways, corev1.PullNever, corev1.PullIfNotPresent} {
		if strings.EqualFold(s, string(p)) {
			return p, nil
		}
	}
	return "", fmt.Errorf("unsupported pull policy %q; valid values (case insensitive): Always | Never | IfNotPresent", s)
}

// scaleRange reads kn's --scale: "N" sets min and max scale to N, "X..Y"
// sets both, "X.." only the min and "..Y" only the max.
func scaleRange(v string) ([][2]string, error) {
	lo, hi, isRange := strings.Cut(v, "..")
	if !isRange {
		if _, err := strconv.Atoi(v); err != nil {
			return nil, fmt.Errorf("Scale must be of the format x..y or x")
		}
		lo, hi = v, v
	}
	var out [][2]string
	for _, b := range []struct{ key, value string }{
		{autoscaling.MinScaleAnnotation.Canonical(), lo}, {autoscaling.MaxScaleAnnotation.Canonical(), hi},
	} {
		if b.value == "" {
			continue
		}
		n, err := strconv.Atoi(b.value)
		if err != nil {
			return nil, err
		}
		out = append(out, [2]string{b.key, strconv.Itoa(n)})
	}
	return out, nil
}
