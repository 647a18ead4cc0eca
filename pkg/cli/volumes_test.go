package cli

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// kn's generated names: the path, dashed, and four bytes of its SHA-1.
func TestGeneratedVolumeName(t *testing.T) {
	for path, want := range map[string]string{
		"/etc/config": "etc-config-e96bfedd",
		"/Data_1":     "data-1-da546824",
	} {
		if got := generatedVolumeName(path); got != want {
			t.Errorf("%s: %q, want %q", path, got, want)
		}
	}
}

func TestMountAndVolumeFlags(t *testing.T) {
	svc := existingService()
	if err := applyFlags(t, svc, "--mount", "/etc/config=cm:app-config", "--mount", "/secret=sc:creds/key",
		"--mount", "/data=pvc:claim", "--mount", "/scratch=ed:scratch",
		"--volume", "cache=emptyDir:size=64Mi,type=Memory", "--mount", "/cache=cache"); err != nil {
		t.Fatal(err)
	}
	spec := svc.Spec.Template.Spec
	ctr := spec.Containers[0]
	got := map[string]corev1.VolumeMount{}
	for _, m := range ctr.VolumeMounts {
		got[m.MountPath] = m
	}
	cfg := generatedVolumeName("/etc/config")
	if m := got["/etc/config"]; m.Name != cfg || !m.ReadOnly {
		t.Errorf("/etc/config mount: %+v", m)
	}
	if m := got["/secret"]; m.Name != generatedVolumeName("/secret") || m.SubPath != "key" || !m.ReadOnly {
		t.Errorf("/secret mount: %+v", m)
	}
	if m := got["/data"]; m.ReadOnly || m.Name != generatedVolumeName("/data") {
		t.Errorf("/data mount: %+v", m)
	}
	if m := got["/scratch"]; m.Name != "scratch" || m.ReadOnly {
		t.Errorf("/scratch mount: %+v", m)
	}
	vols := map[string]corev1.VolumeSource{}
	for _, v := range spec.Volumes {
		vols[v.Name] = v.VolumeSource
	}
	if v := vols[cfg]; v.ConfigMap == nil || v.ConfigMap.Name != "app-config" {
		t.Errorf("configmap volume: %+v", v)
	}
	if v := vols[generatedVolumeName("/data")]; v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != "claim" {
		t.Errorf("claim volume: %+v", v)
	}
	if v := vols["cache"]; v.EmptyDir == nil || v.EmptyDir.Medium != corev1.StorageMediumMemory || v.EmptyDir.SizeLimit.String() != "64Mi" {
		t.Errorf("cache volume: %+v", v)
	}

	// Unmounting removes the generated volume, not a named one.
	if err := applyFlags(t, svc, "--mount", "/etc/config-", "--mount", "/cache-"); err != nil {
		t.Fatal(err)
	}
	for _, v := range svc.Spec.Template.Spec.Volumes {
		if v.Name == cfg {
			t.Errorf("the generated volume stayed after its unmount")
		}
	}
	if len(svc.Spec.Template.Spec.Volumes) != 4 || len(svc.Spec.Template.Spec.Containers[0].VolumeMounts) != 3 {
		t.Errorf("after unmounting: %d volumes %d mounts", len(svc.Spec.Template.Spec.Volumes), len(svc.Spec.Template.Spec.Containers[0].VolumeMounts))
	}
	if err := applyFlags(t, svc, "--volume", "cache-"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ args []string }{
		{[]string{"--volume", "scratch-"}},
		{[]string{"--mount", "/x=nothing"}},
		{[]string{"--mount", "/x=nfs:server"}},
	} {
		if err := applyFlags(t, svc, tc.args...); err == nil {
			t.Errorf("%v accepted", tc.args)
		}
	}
}
