// Package crd embeds the CustomResourceDefinitions generated from pkg/apis
// by controller-gen (make generate); never edit the YAML by hand.
package crd

import "embed"

// Files holds every generated CRD.
//
//go:embed *.yaml
var Files embed.FS
