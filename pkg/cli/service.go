package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	servingv1 "github.com/knd-dev/knd/pkg/apis/serving/v1"
	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func newServiceCommand(p *Params) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "service",
		Aliases: []string{"ksvc", "services"},
		Short:   "Manage Knative services",
	}
	cmd.AddCommand(newServiceCreateCommand(p), newServiceUpdateCommand(p), newServiceListCommand(p),
		newServiceDescribeCommand(p), newServiceDeleteCommand(p), newServiceExportCommand(p))
	return cmd
}

// singleName checks for exactly one NAME argument, with kn's message.
func singleName(what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != 1 {
			return fmt.Errorf("'%s' requires the %s name given as single argument", what, strings.Fields(what)[0])
		}
		return nil
	}
}

func newServiceCreateCommand(p *Params) *cobra.Command {
	var f serviceFlags
	var w waitOptions
	var force bool
	cmd := &cobra.Command{
		Use:   "create NAME --image IMAGE",
		Short: "Create a service",
		Example: `  # Create a service 'hello' from the tutorial's image
  knd service create hello --image ghcr.io/knative/helloworld-go:latest --env TARGET=World`,
		Args: singleName("service create"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if !cmd.Flags().Changed("image") {
				return errors.New("'service create' requires the image name to run provided with the --image option")
			}
			ns, c, err := p.connect()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			svc := &servingv1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
			if err := f.apply(cmd, svc); err != nil {
				return err
			}
			existing := &servingv1.Service{}
			err = c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, existing)
			exists := err == nil
			if err != nil && !apierrors.IsNotFound(err) {
				return err
			}
			if exists && !force {
				return fmt.Errorf("cannot create service '%s' in namespace '%s' because the service already exists and no --force option was given", name, ns)
			}
			verb, gerund := "created", "Creating service"
			if exists {
				verb, gerund = "replaced", "Replacing service"
				svc.ResourceVersion = existing.ResourceVersion
				// As kn: who created it stays (the webhook refuses a change).
				for _, k := range []string{servingv1.CreatorAnnotation, servingv1.UpdaterAnnotation} {
					if v, ok := existing.Annotations[k]; ok {
						metav1.SetMetaDataAnnotation(&svc.ObjectMeta, k, v)
					}
				}
				err = c.Update(ctx, svc)
			} else {
				err = c.Create(ctx, svc)
			}
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if w.async() {
				fmt.Fprintf(out, "Service '%s' %s in namespace '%s'.\n", name, verb, ns)
				return nil
			}
			fmt.Fprintf(out, "%s '%s' in namespace '%s':\n\n", gerund, name, ns)
			ready, err := waitForService(ctx, c, ns, name, w, out)
			if err != nil {
				return err
			}
			fmt.Fprintln(out)
			printServiceURL(out, ready, "", verb)
			return nil
		},
	}
	f.addFlags(cmd)
	w.addFlags(cmd.Flags(), "create")
	cmd.Flags().BoolVar(&force, "force", false, "Create service forcefully, replaces existing service if any.")
	return cmd
}

// printServiceURL is kn's closing line; a revision that did not change
// since before the update is "(unchanged)".
func printServiceURL(out io.Writer, svc *servingv1.Service, before, verb string) {
	latest := svc.Status.LatestReadyRevisionName
	if before != "" && before == latest {
		fmt.Fprintf(out, "Service '%s' with latest revision '%s' (unchanged) is available at URL:\n%s\n", svc.Name, latest, svc.Status.URL)
		return
	}
	fmt.Fprintf(out, "Service '%s' %s to latest revision '%s' is available at URL:\n%s\n", svc.Name, verb, latest, svc.Status.URL)
}

func newServiceUpdateCommand(p *Params) *cobra.Command {
	var f serviceFlags
	var w waitOptions
	var traffic TrafficFlags
	cmd := &cobra.Command{
		Use:   "update NAME",
		Short: "Update a service",
		Example: `  # Split traffic 40/60 and tag a revision
  knd service update hello --traffic hello-00001=40 --traffic @latest=60 --tag hello-00001=green`,
		Args: singleName("service update"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if err := traffic.Validate(); err != nil {
				return err
			}
			ns, c, err := p.connect()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var latestBefore string
			err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
				svc := &servingv1.Service{}
				if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, svc); err != nil {
					return err
				}
				latestBefore = svc.Status.LatestReadyRevisionName
				before := svc.Spec.Template.DeepCopy()
				if err := f.apply(cmd, svc); err != nil {
					return err
				}
				// A changed template needs a new revision name: keep a
				// user-chosen one only when the template stays the same.
				if !cmd.Flags().Changed("revision-name") && !equality.Semantic.DeepEqual(before, &svc.Spec.Template) {
					svc.Spec.Template.Name = ""
				}
				if !traffic.Empty() {
					t, err := ComputeTraffic(svc.Spec.Traffic, traffic, name)
					if err != nil {
						return err
					}
					svc.Spec.Traffic = t
				}
				return c.Update(ctx, svc)
			})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if w.async() {
				fmt.Fprintf(out, "Service '%s' updated in namespace '%s'.\n", name, ns)
				return nil
			}
			fmt.Fprintf(out, "Updating Service '%s' in namespace '%s':\n\n", name, ns)
			ready, err := waitForService(ctx, c, ns, name, w, out)
			if err != nil {
				return err
			}
			fmt.Fprintln(out)
			printServiceURL(out, ready, latestBefore, "updated")
			return nil
		},
	}
	f.addFlags(cmd)
	w.addFlags(cmd.Flags(), "update")
	fl := cmd.Flags()
	fl.StringSliceVar(&traffic.Traffic, "traffic", nil, "Set traffic distribution (format: --traffic revisionRef=percent) where revisionRef can be a revision or a tag or '@latest' string representing latest ready revision. This flag can be given multiple times with percent summing up to 100%.")
	fl.StringSliceVar(&traffic.Tags, "tag", nil, "Set tag (format: --tag revisionRef=tagName) where revisionRef can be a revision or '@latest' string representing latest ready revision. This flag can be specified multiple times.")
	fl.StringSliceVar(&traffic.Untag, "untag", nil, "Untag revision (format: --untag tagName). This flag can be specified multiple times.")
	return cmd
}

// connect resolves the namespace and a client.
func (p *Params) connect() (string, client.WithWatch, error) {
	ns, err := p.Namespace()
	if err != nil {
		return "", nil, err
	}
	c, err := p.Client()
	return ns, c, err
}

func newServiceListCommand(p *Params) *cobra.Command {
	var output string
	var noHeaders bool
	cmd := &cobra.Command{
		Use:     "list [NAME]",
		Aliases: []string{"ls"},
		Short:   "List services",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			list := &servingv1.ServiceList{}
			if _, err := listSorted(cmd.Context(), p, list, &list.Items, nameArg(args)); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if done, err := printedOtherwise(out, list, len(list.Items), output, "No services found."); done {
				return err
			}
			t := newTable(out, !noHeaders, withNamespace(p.allNamespaces, "NAMESPACE", "NAME", "URL", "LATEST", "AGE", "CONDITIONS", "READY", "REASON")...)
			for _, s := range list.Items {
				ready, reason := readyColumns(s.Status.Status)
				t.row(withNamespace(p.allNamespaces, s.Namespace, s.Name, s.Status.URL, s.Status.LatestReadyRevisionName,
					age(s.CreationTimestamp.Time), conditionsSummary(s.Status.Status), ready, reason)...)
			}
			return t.flush()
		},
	}
	p.addAllNamespacesFlag(cmd)
	addOutputFlags(cmd, &output, &noHeaders)
	return cmd
}

func newServiceDescribeCommand(p *Params) *cobra.Command {
	var output string
	var verbose bool
	cmd := &cobra.Command{
		Use:   "describe NAME",
		Short: "Show details of a service",
		Args:  singleName("service describe"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ns, c, err := p.connect()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			svc := &servingv1.Service{}
			if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: args[0]}, svc); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			switch output {
			case "":
			case "url":
				fmt.Fprintln(out, svc.Status.URL)
				return nil
			default:
				return printObject(out, svc, output)
			}
			revisions, err := serviceRevisions(ctx, c, svc, verbose)
			if err != nil {
				return err
			}
			describeService(out, svc, revisions, verbose)
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "Output format. One of: json|yaml|name|url.")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "More output.")
	return cmd
}

// serviceRevision is one revision as service describe shows it.
type serviceRevision struct {
	rev        *servingv1.Revision
	percent    int64
	tag        string
	viaLatest  bool
	generation int64
}

// serviceRevisions gathers the revisions the service routes to, plus its
// latest created and ready ones (with verbose: all of them), newest first.
func serviceRevisions(ctx context.Context, c client.Client, svc *servingv1.Service, all bool) ([]serviceRevision, error) {
	seen := map[string]bool{}
	var out []serviceRevision
	add := func(name string, target *servingv1.TrafficTarget) error {
		rev := &servingv1.Revision{}
		if err := c.Get(ctx, types.NamespacedName{Namespace: svc.Namespace, Name: name}, rev); err != nil {
			return err
		}
		seen[name] = true
		sr := serviceRevision{rev: rev, generation: revisionGeneration(rev)}
		if target != nil {
			sr.percent = ptr.Deref(target.Percent, 0)
			sr.tag = target.Tag
			sr.viaLatest = target.LatestRevision != nil && *target.LatestRevision
		}
		out = append(out, sr)
		return nil
	}
	for i := range svc.Status.Traffic {
		t := &svc.Status.Traffic[i]
		if t.RevisionName == "" {
			continue
		}
		if err := add(t.RevisionName, t); err != nil {
			return nil, err
		}
	}
	for _, name := range []string{svc.Status.LatestCreatedRevisionName, svc.Status.LatestReadyRevisionName} {
		if name != "" && !seen[name] {
			if err := add(name, nil); err != nil {
				return nil, err
			}
		}
	}
	if all {
		list := &servingv1.RevisionList{}
		if err := c.List(ctx, list, client.InNamespace(svc.Namespace), client.MatchingLabels{servingv1.ServiceLabelKey: svc.Name}); err != nil {
			return nil, err
		}
		for _, r := range list.Items {
			if !seen[r.Name] {
				seen[r.Name] = true
				out = append(out, serviceRevision{rev: r.DeepCopy(), generation: revisionGeneration(&r)})
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].generation > out[j].generation })
	return out, nil
}

// bullet is the traffic column of service describe: "100%" for a ready
// revision with traffic, "   +" ready without, "   !" failed, "   ?" unknown.
func bullet(percent int64, status string) string {
	symbol := "?"
	switch status {
	case "True":
		symbol = "+"
		if percent > 0 {
			symbol = "%"
		}
	case "False":
		symbol = "!"
	}
	if percent == 0 {
		return "   " + symbol
	}
	return fmt.Sprintf("%3d%s", percent, symbol)
}

func describeService(out io.Writer, svc *servingv1.Service, revisions []serviceRevision, verbose bool) {
	d := newDescriber(out)
	describeMetadata(d, &svc.ObjectMeta)
	d.attr("URL", svc.Status.URL)
	if verbose && svc.Status.Address != nil {
		d.attr("Cluster", svc.Status.Address.URL)
	}
	if sa := svc.Spec.Template.Spec.ServiceAccountName; sa != "" {
		d.attr("Service Account", sa)
	}
	d.blank()
	d.section("Revisions")
	for _, r := range revisions {
		ready := readyCondition(r.rev.Status.Status)
		header := r.rev.Name
		switch {
		case r.viaLatest:
			header = fmt.Sprintf("@latest (%s)", r.rev.Name)
		case r.rev.Name == svc.Status.LatestReadyRevisionName:
			header += " (current @latest)"
		case r.rev.Name == svc.Status.LatestCreatedRevisionName:
			header += " (latest created)"
		}
		if r.tag != "" {
			header += " #" + r.tag
		}
		d.line("  %s  %s [%d] (%s)", bullet(r.percent, string(ready.Status)), header, r.generation, age(r.rev.CreationTimestamp.Time))
		sub := newDescriber(out)
		sub.inset = "        "
		if ready.Status == "False" {
			sub.attr("Error", ready.Reason)
		}
		revisionAttrs(sub, r.rev, verbose, false)
		sub.flush()
	}
	d.blank()
	d.conditions(svc.Status.Conditions, verbose)
}

// describeMetadata queues Name, Namespace, Labels, Annotations and Age.
func describeMetadata(d *describer, m *metav1.ObjectMeta) {
	d.attr("Name", m.Name)
	d.attr("Namespace", m.Namespace)
	d.mapAttr("Labels", m.Labels)
	d.mapAttr("Annotations", m.Annotations)
	d.attr("Age", age(m.CreationTimestamp.Time))
}

func newServiceDeleteCommand(p *Params) *cobra.Command {
	var w waitOptions
	var all bool
	cmd := &cobra.Command{
		Use:     "delete NAME...",
		Aliases: []string{"rm"},
		Short:   "Delete services",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 && !all {
				return errors.New("'service delete' requires the service name(s)")
			}
			ns, c, err := p.connect()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if all {
				list := &servingv1.ServiceList{}
				if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
					return err
				}
				args = nil
				for _, s := range list.Items {
					args = append(args, s.Name)
				}
				if len(args) == 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "No services found.\n")
					return nil
				}
			}
			var failed []string
			for _, name := range args {
				svc := &servingv1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
				if err := deleteAndWait(ctx, c, svc, w); err != nil {
					failed = append(failed, err.Error())
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Service '%s' successfully deleted in namespace '%s'.\n", name, ns)
			}
			if len(failed) > 0 {
				return errors.New(strings.Join(failed, "\n"))
			}
			return nil
		},
	}
	w.addFlags(cmd.Flags(), "delete")
	cmd.Flags().BoolVar(&all, "all", false, "Delete all services in a namespace.")
	return cmd
}

// deleteAndWait deletes obj in the foreground and, unless --no-wait, waits
// until it is gone.
func deleteAndWait(ctx context.Context, c client.Client, obj client.Object, w waitOptions) error {
	if err := c.Delete(ctx, obj, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil {
		return err
	}
	if w.async() {
		return nil
	}
	deadline := time.Now().Add(time.Duration(w.timeout) * time.Second)
	for {
		err := c.Get(ctx, client.ObjectKeyFromObject(obj), obj)
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timeout: %s '%s' not deleted after %d seconds", strings.ToLower(obj.GetObjectKind().GroupVersionKind().Kind), obj.GetName(), w.timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func newServiceExportCommand(p *Params) *cobra.Command {
	output := "yaml"
	cmd := &cobra.Command{
		Use:   "export NAME",
		Short: "Export a service as a manifest that can be applied again",
		Args:  singleName("service export"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ns, c, err := p.connect()
			if err != nil {
				return err
			}
			svc := &servingv1.Service{}
			if err := c.Get(cmd.Context(), types.NamespacedName{Namespace: ns, Name: args[0]}, svc); err != nil {
				return err
			}
			export, err := exportable(svc)
			if err != nil {
				return err
			}
			return printObject(cmd.OutOrStdout(), export, output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", output, "Output format. One of: json|yaml.")
	return cmd
}

// exportable keeps what a user wrote: name, namespace, labels, their own
// annotations and the spec; no status.
func exportable(svc *servingv1.Service) (*unstructured.Unstructured, error) {
	out := &servingv1.Service{ObjectMeta: metav1.ObjectMeta{
		Name: svc.Name, Namespace: svc.Namespace, Labels: svc.Labels,
	}, Spec: svc.Spec}
	out.SetGroupVersionKind(servingv1.SchemeGroupVersion.WithKind("Service"))
	for k, v := range svc.Annotations {
		if k == servingv1.CreatorAnnotation || k == servingv1.UpdaterAnnotation || k == servingv1.LastAppliedAnnotation {
			continue
		}
		applyMap(&out.Annotations, [][2]string{{k, v}}, nil)
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(out)
	if err != nil {
		return nil, err
	}
	delete(m, "status")
	unstructured.RemoveNestedField(m, "metadata", "creationTimestamp")
	return &unstructured.Unstructured{Object: m}, nil
}
