#!/usr/bin/env bash
# Builds the tutorials' sample apps as static binaries and loads them into
# knd's image store under the image names the tutorial manifests use, so
# every manifest in examples/ runs without a registry.
#   examples/load-images.sh [knd binary]   (KND_DATA_DIR picks the store)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
knd=${1:-$here/../bin/knd}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
CGO_ENABLED=0 go build -C "$here/apps/helloworld" -o "$out/helloworld" .
CGO_ENABLED=0 go build -C "$here/apps/rest-api" -o "$out/rest-api" .
for ref in registry.cn-hangzhou.aliyuncs.com/knative-sample/helloworld-go:160e4dc8 \
           ghcr.dockerproxy.com/knative/helloworld-go:latest \
           ikubernetes/helloworld-go; do
  "$knd" image import "$out/helloworld" --name "$ref"
done
"$knd" image import "$out/rest-api" --name registry.cn-hangzhou.aliyuncs.com/knative-sample/rest-api-go:v1
