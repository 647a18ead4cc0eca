package image_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/knd-dev/knd/pkg/node/image"
	"github.com/knd-dev/knd/pkg/node/nodetest"
)

func TestImportExecutableAndUnpack(t *testing.T) {
	dir := t.TempDir()
	bin := nodetest.BuildTestServer(t, dir)
	store, err := image.Open(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	imgs, err := store.Import(bin, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 1 || imgs[0].Ref != "ko.local/testserver:latest" {
		t.Fatalf("imported %+v, want ko.local/testserver:latest", imgs)
	}
	if got := imgs[0].Config.Entrypoint; len(got) != 1 || got[0] != "/testserver" {
		t.Errorf("entrypoint %q, want [/testserver]", got)
	}
	byDigest, err := store.Lookup("ko.local/testserver@" + imgs[0].Digest)
	if err != nil || byDigest.Ref != imgs[0].Ref {
		t.Fatalf("lookup by digest: %+v, %v", byDigest, err)
	}
	root, err := store.Rootfs(byDigest)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(root, "testserver"))
	if err != nil || st.Mode()&0o111 == 0 {
		t.Fatalf("unpacked entrypoint: %v, %v", st, err)
	}
	// A second unpack reuses the tree.
	again, err := store.Rootfs(byDigest)
	if err != nil || again != root {
		t.Fatalf("second unpack: %q, %v; want %q", again, err, root)
	}
}

func TestImportTarballs(t *testing.T) {
	dir := t.TempDir()
	bin := nodetest.BuildTestServer(t, dir)
	img, err := image.WrapExecutable(bin)
	if err != nil {
		t.Fatal(err)
	}
	// docker save format.
	tag, _ := name.NewTag("example.com/team/app:v2")
	saved := filepath.Join(dir, "saved.tar")
	if err := tarball.WriteToFile(saved, tag, img); err != nil {
		t.Fatal(err)
	}
	// OCI layout, as a tarball of the layout directory.
	ociDir := filepath.Join(dir, "oci")
	p, err := layout.Write(ociDir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "dev.local/oci-app:v1"})); err != nil {
		t.Fatal(err)
	}
	ociTar := filepath.Join(dir, "oci.tar")
	if out, err := runTar(ociDir, ociTar); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}

	store, err := image.Open(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ file, want string }{
		{saved, "example.com/team/app:v2"},
		{ociTar, "dev.local/oci-app:v1"},
	} {
		imgs, err := store.Import(tc.file, "")
		if err != nil {
			t.Fatalf("import %s: %v", tc.file, err)
		}
		if len(imgs) != 1 || imgs[0].Ref != tc.want {
			t.Errorf("import %s: %+v, want %s", tc.file, imgs, tc.want)
		}
	}
	list, err := store.List()
	if err != nil || len(list) != 2 {
		t.Fatalf("list: %+v, %v", list, err)
	}
	if _, err := store.Import(filepath.Join("testdata", "not-an-image.txt"), ""); err == nil ||
		!strings.Contains(err.Error(), "neither an image tarball") {
		t.Errorf("importing a text file: %v", err)
	}
}

func TestLocalRegistriesAreNeverPulled(t *testing.T) {
	store, err := image.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	_, err = store.Resolve(context.Background(), "ko.local/missing:v1")
	if !errors.Is(err, image.ErrNotFound) || !strings.Contains(err.Error(), "knd image import") {
		t.Fatalf("resolve ko.local/missing:v1: %v", err)
	}
}

func runTar(dir, out string) ([]byte, error) {
	return exec.Command("tar", "-C", dir, "-cf", out, ".").CombinedOutput()
}
