package cli

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/knd-dev/knd/pkg/apis/autoscaling"
	servingv1 "github.com/knd-dev/knd/pkg/apis/serving/v1"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func newRevisionCommand(p *Params) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "revision",
		Aliases: []string{"revisions"},
		Short:   "Manage service revisions",
	}
	cmd.AddCommand(newRevisionListCommand(p), newRevisionDescribeCommand(p), newRevisionDeleteCommand(p))
	return cmd
}

// revisionGeneration is the configuration generation a revision was made
// from (its serving.knative.dev/configurationGeneration label).
func revisionGeneration(rev *servingv1.Revision) int64 {
	g, _ := strconv.ParseInt(rev.Labels[servingv1.ConfigurationGenerationLabelKey], 10, 64)
	return g
}

// trafficAndTags are the TRAFFIC and TAGS columns of a revision: what the
// service's status routes to it.
func trafficAndTags(rev string, svc *servingv1.Service) (string, string) {
	if svc == nil {
		return "", ""
	}
	var percent int64
	var tags []string
	targeted := false
	for _, t := range svc.Status.Traffic {
		if t.RevisionName != rev {
			continue
		}
		targeted = true
		percent += ptr.Deref(t.Percent, 0)
		if t.Tag != "" {
			tags = append(tags, t.Tag)
		}
	}
	if !targeted {
		return "", ""
	}
	return fmt.Sprintf("%d%%", percent), strings.Join(tags, ",")
}

func newRevisionListCommand(p *Params) *cobra.Command {
	var output, service string
	var noHeaders bool
	cmd := &cobra.Command{
		Use:     "list [NAME]",
		Aliases: []string{"ls"},
		Short:   "List revisions",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var opts []client.ListOption
			if service != "" {
				opts = append(opts, client.MatchingLabels{servingv1.ServiceLabelKey: service})
			}
			list := &servingv1.RevisionList{}
			c, err := listSorted(ctx, p, list, &list.Items, nameArg(args), opts...)
			if err != nil {
				return err
			}
			// By namespace, service, then newest generation first.
			sort.SliceStable(list.Items, func(i, j int) bool {
				a, b := &list.Items[i], &list.Items[j]
				if a.Namespace != b.Namespace {
					return a.Namespace < b.Namespace
				}
				if sa, sb := a.Labels[servingv1.ServiceLabelKey], b.Labels[servingv1.ServiceLabelKey]; sa != sb {
					return sa < sb
				}
				return revisionGeneration(a) > revisionGeneration(b)
			})
			out := cmd.OutOrStdout()
			if done, err := printedOtherwise(out, list, len(list.Items), output, "No revisions found."); done {
				return err
			}
			// The TRAFFIC and TAGS columns come from the services' status.
			ns, err := p.listNamespace()
			if err != nil {
				return err
			}
			services := &servingv1.ServiceList{}
			if err := c.List(ctx, services, client.InNamespace(ns)); err != nil {
				return err
			}
			byName := map[types.NamespacedName]*servingv1.Service{}
			for i := range services.Items {
				s := &services.Items[i]
				byName[types.NamespacedName{Namespace: s.Namespace, Name: s.Name}] = s
			}
			t := newTable(out, !noHeaders, withNamespace(p.allNamespaces, "NAMESPACE", "NAME", "SERVICE", "TRAFFIC", "TAGS", "GENERATION", "AGE", "CONDITIONS", "READY", "REASON")...)
			for i := range list.Items {
				r := &list.Items[i]
				svcName := r.Labels[servingv1.ServiceLabelKey]
				traffic, tags := trafficAndTags(r.Name, byName[types.NamespacedName{Namespace: r.Namespace, Name: svcName}])
				ready, reason := readyColumns(r.Status.Status)
				t.row(withNamespace(p.allNamespaces, r.Namespace, r.Name, svcName, traffic, tags,
					r.Labels[servingv1.ConfigurationGenerationLabelKey], age(r.CreationTimestamp.Time),
					conditionsSummary(r.Status.Status), ready, reason)...)
			}
			return t.flush()
		},
	}
	p.addAllNamespacesFlag(cmd)
	cmd.Flags().StringVarP(&service, "service", "s", "", "Service name")
	addOutputFlags(cmd, &output, &noHeaders)
	return cmd
}

func newRevisionDescribeCommand(p *Params) *cobra.Command {
	var output string
	var verbose bool
	cmd := &cobra.Command{
		Use:   "describe NAME",
		Short: "Show details of a revision",
		Args:  singleName("revision describe"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ns, c, err := p.connect()
			if err != nil {
				return err
			}
			rev := &servingv1.Revision{}
			if err := c.Get(cmd.Context(), types.NamespacedName{Namespace: ns, Name: args[0]}, rev); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if output != "" {
				return printObject(out, rev, output)
			}
			d := newDescriber(out)
			describeMetadata(d, &rev.ObjectMeta)
			revisionAttrs(d, rev, verbose, true)
			if svc := rev.Labels[servingv1.ServiceLabelKey]; svc != "" {
				d.attr("Service", svc)
			}
			d.blank()
			d.conditions(rev.Status.Conditions, verbose)
			return nil
		},
	}
	addOutputFlags(cmd, &output, nil)
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "More output.")
	return cmd
}

// imageDescription is the image, with the digest it ran as when known: kn
// says "pinned to" when the user gave the image by tag.
func imageDescription(rev *servingv1.Revision) string {
	if len(rev.Spec.Containers) == 0 {
		return ""
	}
	image := rev.Spec.Containers[0].Image
	digest := ""
	if len(rev.Status.ContainerStatuses) > 0 {
		digest = rev.Status.ContainerStatuses[0].ImageDigest
	}
	if digest == "" {
		return image
	}
	short := digest
	if _, hex, ok := strings.Cut(digest, "@"); ok {
		short = hex
	}
	short = strings.TrimPrefix(short, "sha256:")
	short = short[:min(6, len(short))]
	how := "at"
	if user := rev.Annotations[userImageAnnotation]; user != "" && strings.HasPrefix(user, strings.Split(image, "@")[0]) {
		image, how = user, "pinned to"
	}
	return fmt.Sprintf("%s (%s %s)", image, how, short)
}

// revisionAttrs queues what revision describe (and, indented, service
// describe) shows of a revision. Port, env, scale and concurrency appear in
// revision describe, or with verbose.
func revisionAttrs(d *describer, rev *servingv1.Revision, verbose, full bool) {
	d.attr("Image", imageDescription(rev))
	if rev.Status.ActualReplicas != nil || rev.Status.DesiredReplicas != nil {
		d.attr("Replicas", fmt.Sprintf("%d/%d", ptr.Deref(rev.Status.ActualReplicas, 0), ptr.Deref(rev.Status.DesiredReplicas, 0)))
	}
	if !full && !verbose || len(rev.Spec.Containers) == 0 {
		return
	}
	ctr := rev.Spec.Containers[0]
	if len(ctr.Ports) > 0 {
		d.attr("Port", strconv.Itoa(int(ctr.Ports[0].ContainerPort)))
	}
	var env []string
	for _, e := range ctr.Env {
		if e.ValueFrom == nil {
			env = append(env, e.Name+"="+e.Value)
		} else {
			env = append(env, e.Name+"=[ref]")
		}
	}
	if len(env) > 0 {
		d.attr("Env", truncate(strings.Join(env, ", "), 100))
	}
	_, minScale, _ := autoscaling.MinScaleAnnotation.Get(rev.Annotations)
	_, maxScale, _ := autoscaling.MaxScaleAnnotation.Get(rev.Annotations)
	if minScale != "" || maxScale != "" {
		if minScale == "" {
			minScale = "0"
		}
		if maxScale == "" {
			maxScale = "∞"
		}
		d.attr("Scale", minScale+" ... "+maxScale)
	}
	if cc := ptr.Deref(rev.Spec.ContainerConcurrency, 0); cc > 0 {
		d.attr("Concurrency", fmt.Sprintf("Limit: %d", cc))
	}
	if _, target, _ := autoscaling.TargetAnnotation.Get(rev.Annotations); target != "" {
		d.attr("Concurrency Target", target)
	}
	for _, r := range []struct{ label, name string }{{"Memory", "memory"}, {"CPU", "cpu"}} {
		req, hasReq := ctr.Resources.Requests[corev1.ResourceName(r.name)]
		lim, hasLim := ctr.Resources.Limits[corev1.ResourceName(r.name)]
		if !hasReq && !hasLim {
			continue
		}
		value := ""
		if hasReq {
			value = req.String()
		}
		if hasLim {
			value += " (limit: " + lim.String() + ")"
		}
		d.attr(r.label, strings.TrimSpace(value))
	}
}

func newRevisionDeleteCommand(p *Params) *cobra.Command {
	var w waitOptions
	var pruneService string
	var pruneAll bool
	cmd := &cobra.Command{
		Use:     "delete NAME...",
		Aliases: []string{"rm"},
		Short:   "Delete revisions",
		Example: `
  # Delete a revision 'svc1-abcde' in default namespace
  knd revision delete svc1-abcde

  # Delete all unreferenced revisions
  knd revision delete --prune-all

  # Delete all unreferenced revisions for a given service 'mysvc'
  knd revision delete --prune mysvc`,
		RunE: func(cmd *cobra.Command, args []string) error {
			prune := cmd.Flags().Changed("prune")
			switch {
			case len(args) == 0 && !prune && !pruneAll:
				return errors.New("'revision delete' requires one or more revision names")
			case len(args) > 0 && pruneAll:
				return errors.New("'revision delete' with --prune-all flag requires no arguments")
			}
			ns, c, err := p.connect()
			if err != nil {
				return err
			}
			if prune || pruneAll {
				if args, err = unreferencedRevisions(cmd.Context(), c, ns, pruneService, prune); err != nil {
					return err
				}
				if len(args) == 0 {
					fmt.Fprintln(cmd.OutOrStdout(), "No unreferenced revisions found.")
					return nil
				}
			}
			var failed []string
			for _, name := range args {
				rev := &servingv1.Revision{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
				if err := deleteAndWait(cmd.Context(), c, rev, w); err != nil {
					failed = append(failed, err.Error())
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Revision '%s' deleted in namespace '%s'.\n", name, ns)
			}
			if len(failed) > 0 {
				return errors.New(strings.Join(failed, "\n"))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&pruneService, "prune", "", "Remove unreferenced revisions for a given service in a namespace.")
	cmd.Flags().BoolVar(&pruneAll, "prune-all", false, "Remove all unreferenced revisions in a namespace.")
	w.addFlags(cmd.Flags(), "delete")
	return cmd
}

// unreferencedRevisions are the revisions of a namespace (of one Service
// with byService) that no route sends traffic to (routing state not
// active), as kn prunes them: by Service, then generation.
func unreferencedRevisions(ctx context.Context, c client.Client, ns, service string, byService bool) ([]string, error) {
	var revs servingv1.RevisionList
	opts := []client.ListOption{client.InNamespace(ns)}
	if byService {
		opts = append(opts, client.MatchingLabels{servingv1.ServiceLabelKey: service})
	}
	if err := c.List(ctx, &revs, opts...); err != nil {
		return nil, err
	}
	sort.SliceStable(revs.Items, func(i, j int) bool {
		a, b := &revs.Items[i], &revs.Items[j]
		if sa, sb := a.Labels[servingv1.ServiceLabelKey], b.Labels[servingv1.ServiceLabelKey]; sa != sb {
			return sa < sb
		}
		ga, _ := strconv.Atoi(a.Labels[servingv1.ConfigurationGenerationLabelKey])
		gb, _ := strconv.Atoi(b.Labels[servingv1.ConfigurationGenerationLabelKey])
		return ga < gb
	})
	var names []string
	for _, r := range revs.Items {
		if r.Labels[servingv1.RoutingStateLabelKey] != servingv1.RoutingStateActive {
			names = append(names, r.Name)
		}
	}
	return names, nil
}
