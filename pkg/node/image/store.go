// Package image is the node's image store: OCI images kept in an OCI layout
// under the data dir, found by reference or digest, pulled from a registry
// when one is reachable, and unpacked once per digest for the process
// provider. The server and `knd image import` share the store, so every
// change to the layout's index happens under a file lock.
package image

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// refAnnotation names an image in the layout's index (OCI image-spec).
const refAnnotation = "org.opencontainers.image.ref.name"

// localRegistries are never contacted: images named there come only from
// the local store, as with upstream's tag resolution skip list.
var localRegistries = []string{"ko.local", "dev.local", "kind.local"}

// ErrNotFound says an image is neither in the store nor pullable.
var ErrNotFound = errors.New("image not found")

// Store is an image store rooted at a directory.
type Store struct {
	root string
}

// Image is one stored image.
type Image struct {
	// Ref is the normalized reference it is known by.
	Ref string
	// Digest is the manifest digest.
	Digest string
	// Size is the sum of its compressed layers.
	Size int64
	// Config is the image's run configuration (entrypoint, cmd, env, workdir).
	Config v1.Config
	img    v1.Image
}

// Open opens (creating if needed) the store under root.
func Open(root string) (*Store, error) {
	s := &Store{root: root}
	if err := os.MkdirAll(filepath.Join(root, "rootfs"), 0o755); err != nil {
		return nil, err
	}
	err := s.locked(func() error {
		if _, err := layout.FromPath(s.layoutDir()); err == nil {
			return nil
		}
		_, err := layout.Write(s.layoutDir(), empty.Index)
		return err
	})
	return s, err
}

func (s *Store) layoutDir() string { return filepath.Join(s.root, "layout") }

// locked runs fn holding the store's file lock.
func (s *Store) locked(fn func() error) error {
	f, err := os.OpenFile(filepath.Join(s.root, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return fn()
}

// Normalize returns the canonical form of a reference
// ("nginx" → "index.docker.io/library/nginx:latest").
func Normalize(ref string) (string, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return "", err
	}
	return r.Name(), nil
}

// Add stores img under ref, replacing any image that had that reference.
func (s *Store) Add(ref string, img v1.Image) (*Image, error) {
	norm, err := Normalize(ref)
	if err != nil {
		return nil, err
	}
	err = s.locked(func() error {
		p, err := layout.FromPath(s.layoutDir())
		if err != nil {
			return err
		}
		return p.ReplaceImage(img, match.Annotation(refAnnotation, norm),
			layout.WithAnnotations(map[string]string{refAnnotation: norm}))
	})
	if err != nil {
		return nil, err
	}
	return describe(norm, img)
}

func describe(ref string, img v1.Image) (*Image, error) {
	d, err := img.Digest()
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	var size int64
	for _, l := range m.Layers {
		size += l.Size
	}
	return &Image{Ref: ref, Digest: d.String(), Size: size, Config: cf.Config, img: img}, nil
}

// List returns every stored image, sorted by reference.
func (s *Store) List() ([]Image, error) {
	var out []Image
	err := s.locked(func() error {
		p, err := layout.FromPath(s.layoutDir())
		if err != nil {
			return err
		}
		idx, err := p.ImageIndex()
		if err != nil {
			return err
		}
		m, err := idx.IndexManifest()
		if err != nil {
			return err
		}
		for _, d := range m.Manifests {
			img, err := p.Image(d.Digest)
			if err != nil {
				return err
			}
			im, err := describe(d.Annotations[refAnnotation], img)
			if err != nil {
				return err
			}
			out = append(out, *im)
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Ref < out[j].Ref })
	return out, err
}

// Lookup finds ref in the store: by name for tags, by digest for digest
// references.
func (s *Store) Lookup(ref string) (*Image, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, err
	}
	imgs, err := s.List()
	if err != nil {
		return nil, err
	}
	for i := range imgs {
		if d, ok := r.(name.Digest); ok {
			if imgs[i].Digest == d.DigestStr() {
				return &imgs[i], nil
			}
		} else if imgs[i].Ref == r.Name() {
			return &imgs[i], nil
		}
	}
	return nil, fmt.Errorf("%w: %s", ErrNotFound, ref)
}

// Resolve returns the image for ref: from the store, or pulled from its
// registry and stored (never for ko.local, dev.local and kind.local).
func (s *Store) Resolve(ctx context.Context, ref string) (*Image, error) {
	if im, err := s.Lookup(ref); err == nil || !errors.Is(err, ErrNotFound) {
		return im, err
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, err
	}
	if IsLocalOnly(r) {
		return nil, fmt.Errorf("%w: %s is not in the local store (load it with `knd image import`)", ErrNotFound, ref)
	}
	img, err := remote.Image(r, remote.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("pulling %s: %w", ref, err)
	}
	return s.Add(ref, img)
}

// Rootfs returns the directory holding im's unpacked filesystem, unpacking
// it the first time. Unpacking goes to a temporary directory renamed into
// place, so a crash never leaves a half-unpacked tree in use.
func (s *Store) Rootfs(im *Image) (string, error) {
	dir := filepath.Join(s.root, "rootfs", strings.TrimPrefix(im.Digest, "sha256:"))
	if _, err := os.Stat(dir); err == nil {
		return dir, nil
	}
	tmp, err := os.MkdirTemp(filepath.Join(s.root, "rootfs"), ".unpack-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	rc := mutate.Extract(im.img)
	defer rc.Close()
	if err := untar(rc, tmp); err != nil {
		return "", fmt.Errorf("unpacking %s: %w", im.Ref, err)
	}
	if err := os.Rename(tmp, dir); err != nil && !os.IsExist(err) {
		if _, statErr := os.Stat(dir); statErr != nil {
			return "", err
		}
	}
	return dir, nil
}

// untar writes a flattened image filesystem under dir. Device nodes are
// skipped (an unprivileged tree cannot hold them and apps do not need them).
func untar(r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		target, err := within(dir, h.Name)
		if err != nil {
			return err
		}
		mode := os.FileMode(h.Mode).Perm()
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, mode|0o700); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(target, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, mode)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			_ = os.Remove(target)
			if err := os.Symlink(h.Linkname, target); err != nil {
				return err
			}
		case tar.TypeLink:
			src, err := within(dir, h.Linkname)
			if err != nil {
				return err
			}
			_ = os.Remove(target)
			if err := os.Link(src, target); err != nil {
				return err
			}
		}
	}
}

// within joins name to dir, refusing names that climb out of it.
func within(dir, name string) (string, error) {
	p := filepath.Join(dir, filepath.Clean("/"+name))
	if p != dir && !strings.HasPrefix(p, dir+string(filepath.Separator)) {
		return "", fmt.Errorf("tar entry %q escapes the root", name)
	}
	return p, nil
}

// Import loads a file into the store and returns what it added:
//   - a `docker save` tarball: every tagged image in it;
//   - an OCI layout tarball: every image with a ref.name annotation (or ref);
//   - an executable: a one-layer image holding it as its entrypoint, named
//     ref (default ko.local/<file name>:latest).
func (s *Store) Import(path, ref string) ([]Image, error) {
	head := make([]byte, 512)
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	n, _ := io.ReadFull(f, head)
	f.Close()
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, []byte("\x7fELF")) || bytes.HasPrefix(head, []byte("#!")):
		if ref == "" {
			ref = "ko.local/" + strings.ToLower(filepath.Base(path)) + ":latest"
		}
		img, err := WrapExecutable(path)
		if err != nil {
			return nil, err
		}
		im, err := s.Add(ref, img)
		if err != nil {
			return nil, err
		}
		return []Image{*im}, nil
	case len(head) >= 262 && string(head[257:262]) == "ustar":
		return s.importTarball(path, ref)
	}
	return nil, fmt.Errorf("%s is neither an image tarball (docker save or OCI layout) nor an executable", path)
}

// WrapExecutable builds a one-layer image holding the file at /<base name>,
// run as the entrypoint.
func WrapExecutable(path string) (v1.Image, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ExecutableImage(filepath.Base(path), data)
}

// ExecutableImage builds a one-layer image holding data as the executable
// /<base>, run as the entrypoint.
func ExecutableImage(base string, data []byte) (v1.Image, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: base, Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(data); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, err
	}
	return mutate.Config(img, v1.Config{
		Entrypoint: []string{"/" + base},
		Env:        []string{"PATH=/usr/local/bin:/usr/bin:/bin"},
	})
}

func (s *Store) importTarball(path, ref string) ([]Image, error) {
	if isOCILayout(path) {
		return s.importOCILayout(path, ref)
	}
	manifest, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(path) })
	if err != nil {
		return nil, fmt.Errorf("%s: not a docker save tarball: %w", path, err)
	}
	var out []Image
	for _, d := range manifest {
		for _, t := range d.RepoTags {
			tag, err := name.NewTag(t)
			if err != nil {
				return nil, err
			}
			img, err := tarball.ImageFromPath(path, &tag)
			if err != nil {
				return nil, err
			}
			im, err := s.Add(t, img)
			if err != nil {
				return nil, err
			}
			out = append(out, *im)
		}
	}
	// An untagged single image (docker save of an image ID) takes --name.
	if len(out) == 0 && len(manifest) == 1 && ref != "" {
		img, err := tarball.ImageFromPath(path, nil)
		if err != nil {
			return nil, err
		}
		im, err := s.Add(ref, img)
		if err != nil {
			return nil, err
		}
		out = append(out, *im)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no tagged image; name it with --name", path)
	}
	return out, nil
}

func isOCILayout(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err != nil {
			return false
		}
		if filepath.Clean(h.Name) == "oci-layout" {
			return true
		}
	}
}

func (s *Store) importOCILayout(path, ref string) ([]Image, error) {
	tmp, err := os.MkdirTemp(s.root, ".import-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	err = untar(f, tmp)
	f.Close()
	if err != nil {
		return nil, err
	}
	p, err := layout.FromPath(tmp)
	if err != nil {
		return nil, err
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, err
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var out []Image
	for _, d := range m.Manifests {
		if !d.MediaType.IsImage() {
			continue
		}
		r := d.Annotations[refAnnotation]
		if r == "" || !strings.ContainsAny(r, "/:") {
			r = ref
		}
		if r == "" {
			return nil, fmt.Errorf("%s: image %s has no name; name it with --name", path, d.Digest)
		}
		img, err := p.Image(d.Digest)
		if err != nil {
			return nil, err
		}
		im, err := s.Add(r, img)
		if err != nil {
			return nil, err
		}
		out = append(out, *im)
	}
	return out, nil
}

// WriteDockerTarball writes im as a `docker save` tarball tagged with its
// reference, which a Docker engine loads with `docker load`.
func (s *Store) WriteDockerTarball(im *Image, w io.Writer) error {
	tag, err := name.NewTag(im.Ref)
	if err != nil {
		return err
	}
	return s.locked(func() error { return tarball.Write(tag, im.img, w) })
}

// IsLocalOnly says whether r names a registry that upstream never
// resolves (ko.local, dev.local, kind.local): such images only come from a
// local store.
func IsLocalOnly(r name.Reference) bool {
	for _, local := range localRegistries {
		if r.Context().RegistryStr() == local {
			return true
		}
	}
	return false
}

// ConfigDigest is the digest of the image's config, which Docker engines
// use as the image ID.
func (im *Image) ConfigDigest() string {
	h, err := im.img.ConfigName()
	if err != nil {
		return ""
	}
	return h.String()
}
