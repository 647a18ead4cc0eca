package controlplane

import (
	"context"
	"fmt"

	"github.com/spf13/pflag"
	"k8s.io/client-go/tools/cache"
	cliflag "k8s.io/component-base/cli/flag"
	apiserverapp "k8s.io/kubernetes/cmd/kube-apiserver/app"
	apiserveroptions "k8s.io/kubernetes/cmd/kube-apiserver/app/options"
	kcmapp "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	kcmoptions "k8s.io/kubernetes/cmd/kube-controller-manager/app/options"
	schedulerapp "k8s.io/kubernetes/cmd/kube-scheduler/app"
	scheduleroptions "k8s.io/kubernetes/cmd/kube-scheduler/app/options"
)

// The components are the upstream ones, configured through their own
// command-line flags and started through their Run functions rather than
// their cobra commands: each command installs a process-wide signal handler,
// which may happen only once per process.

func parseFlags(component string, sets cliflag.NamedFlagSets, args []string) error {
	fs := pflag.NewFlagSet(component, pflag.ContinueOnError)
	for _, set := range sets.FlagSets {
		fs.AddFlagSet(set)
	}
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%s: %w", component, err)
	}
	return nil
}

func runAPIServer(ctx context.Context, args []string) error {
	s := apiserveroptions.NewServerRunOptions()
	if err := parseFlags("kube-apiserver", s.Flags(), args); err != nil {
		return err
	}
	if err := s.GenericServerRunOptions.ComponentGlobalsRegistry.Set(); err != nil {
		return err
	}
	completed, err := s.Complete(ctx)
	if err != nil {
		return fmt.Errorf("kube-apiserver: %w", err)
	}
	if errs := completed.Validate(); len(errs) != 0 {
		return fmt.Errorf("kube-apiserver: %v", errs)
	}
	// apiserverapp.Run, with every API group's storage on one etcd client.
	if completed.InformerName == nil {
		name, err := cache.NewInformerName("kube-apiserver")
		if err != nil {
			return err
		}
		completed.InformerName = name
	}
	config, err := apiserverapp.NewConfig(completed)
	if err != nil {
		return fmt.Errorf("kube-apiserver: %w", err)
	}
	shared := &sharedEtcd{}
	defer shared.close()
	generic := config.KubeAPIs.ControlPlane.Generic
	generic.RESTOptionsGetter = shared.getter(generic.RESTOptionsGetter)
	ext := config.ApiExtensions
	ext.GenericConfig.RESTOptionsGetter = shared.getter(ext.GenericConfig.RESTOptionsGetter)
	ext.ExtraConfig.CRDRESTOptionsGetter = shared.getter(ext.ExtraConfig.CRDRESTOptionsGetter)
	agg := config.Aggregator.GenericConfig
	agg.RESTOptionsGetter = shared.getter(agg.RESTOptionsGetter)
	// No OpenAPI v2 document from the built-in APIs and the aggregator:
	// building and merging it eagerly held ~25 MB, and kubectl (1.27 on)
	// uses v3, which stays. The extensions server keeps its v2 config:
	// upstream publishes CRDs' v3 schemas only when it has one.
	generic.OpenAPIConfig = nil
	agg.OpenAPIConfig = nil
	done, err := config.Complete()
	if err != nil {
		return fmt.Errorf("kube-apiserver: %w", err)
	}
	server, err := apiserverapp.CreateServerChain(done)
	if err != nil {
		return fmt.Errorf("kube-apiserver: %w", err)
	}
	prepared, err := server.PrepareRun()
	if err != nil {
		return fmt.Errorf("kube-apiserver: %w", err)
	}
	return prepared.Run(ctx)
}

func runControllerManager(ctx context.Context, args []string) error {
	s, err := kcmoptions.NewKubeControllerManagerOptions()
	if err != nil {
		return err
	}
	sets := s.Flags(kcmapp.KnownControllers(), kcmapp.ControllersDisabledByDefault(), kcmapp.ControllerAliases())
	s.ParsedFlags = &sets
	if err := parseFlags("kube-controller-manager", sets, args); err != nil {
		return err
	}
	if err := s.ComponentGlobalsRegistry.Set(); err != nil {
		return err
	}
	c, err := s.Config(ctx, kcmapp.KnownControllers(), kcmapp.ControllersDisabledByDefault(), kcmapp.ControllerAliases())
	if err != nil {
		return fmt.Errorf("kube-controller-manager: %w", err)
	}
	return kcmapp.Run(ctx, c.Complete())
}

func runScheduler(ctx context.Context, args []string) error {
	opts := scheduleroptions.NewOptions()
	if err := parseFlags("kube-scheduler", *opts.Flags, args); err != nil {
		return err
	}
	if err := opts.ComponentGlobalsRegistry.Set(); err != nil {
		return err
	}
	cc, sched, err := schedulerapp.Setup(ctx, opts)
	if err != nil {
		return fmt.Errorf("kube-scheduler: %w", err)
	}
	return schedulerapp.Run(ctx, cc, sched)
}
