// Package samples holds the tutorials' sample apps, built into knd, and puts
// them in the node's image store under the image names the tutorials use, so
// their manifests run as written with no registry and no extra step.
package samples

import (
	"embed"
	"errors"
	"fmt"

	"github.com/knd-dev/knd/pkg/node/image"
)

//go:embed appbin
var apps embed.FS

// Images maps each image name the tutorials use to the app under
// examples/apps that answers for it.
var Images = map[string]string{
	"ghcr.dockerproxy.com/knative/helloworld-go:latest":                       "helloworld",
	"registry.cn-hangzhou.aliyuncs.com/knative-sample/helloworld-go:160e4dc8": "helloworld",
	"ikubernetes/helloworld-go":                                               "helloworld",
	"registry.cn-hangzhou.aliyuncs.com/knative-sample/rest-api-go:v1":         "rest-api",
}

// HelloWorld is the sample image named in the hint `knd server` prints.
const HelloWorld = "ghcr.dockerproxy.com/knative/helloworld-go:latest"

// ErrNotBuiltIn says this knd was built without the sample apps (go build
// instead of make).
var ErrNotBuiltIn = errors.New("the sample apps are not built into this knd (build it with make)")

// Seed adds every sample image the store lacks. It never replaces an image a
// user imported under one of these names.
func Seed(store *image.Store) error {
	stored, err := store.List() // once: each lookup would read the whole store
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, im := range stored {
		have[im.Ref] = true
	}
	for ref, app := range Images {
		norm, err := image.Normalize(ref)
		if err != nil {
			return err
		}
		if have[norm] {
			continue
		}
		data, err := apps.ReadFile("appbin/" + app)
		if err != nil {
			return ErrNotBuiltIn
		}
		img, err := image.ExecutableImage(app, data)
		if err != nil {
			return err
		}
		if _, err := store.Add(ref, img); err != nil {
			return fmt.Errorf("adding sample image %s: %w", ref, err)
		}
	}
	return nil
}
