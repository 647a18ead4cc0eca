package cli

import (
	"crypto/sha1"
	"fmt"
	"slices"
	"strings"
	"unicode"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

const (
	mountUsage  = `Mount a ConfigMap (prefix cm: or config-map:), a Secret (prefix secret: or sc:), an EmptyDir (prefix ed: or emptyDir:), a PersistentVolumeClaim (prefix pvc: or persistentVolumeClaim:) or an existing Volume (without any prefix) on the specified directory. Example: --mount /mydir=cm:myconfigmap, --mount /mydir=secret:mysecret, --mount /mydir=emptyDir:myvol or --mount /mydir=myvolume. When a configmap, a secret or a persistent volume claim is specified, a corresponding volume is automatically generated. You can specify a volume subpath by following the volume name with slash separated path. Example: --mount /mydir=cm:myconfigmap/subpath/to/be/mounted. You can use this flag multiple times. For unmounting a directory, append "-", e.g. --mount /mydir-, which also removes any auto-generated volume.`
	volumeUsage = `Add a volume from a ConfigMap (prefix cm: or config-map:), a Secret (prefix secret: or sc:), an EmptyDir (prefix ed: or emptyDir:) or a PersistentVolumeClaim (prefix pvc: or persistentVolumeClaim:). Example: --volume myvolume=cm:myconfigmap, --volume myvolume=secret:mysecret or --volume myvolume=emptyDir:size=1Gi,type=Memory. You can use this flag multiple times. To unset a volume, append "-" to the name, e.g. --volume myvolume-.`
)

// generatedVolumeName is the name kn gives the volume it makes for a mount
// path: the path in lower case with '/' and other characters as '-', then
// a dash and the first four bytes of the path's SHA-1 in hex.
func generatedVolumeName(path string) string {
	var b strings.Builder
	for i, r := range path {
		switch {
		case unicode.IsLower(r) || unicode.IsDigit(r) || r == '-':
			b.WriteRune(r)
		case unicode.IsUpper(r):
			b.WriteRune(unicode.ToLower(r))
		case r == '/' && i == 0:
		default:
			b.WriteRune('-')
		}
	}
	sum := sha1.Sum([]byte(path))
	name := fmt.Sprintf("%s-%x", b.String(), sum[:4])
	if r := rune(name[0]); !unicode.IsLetter(r) && !unicode.IsDigit(r) {
		name = "k-" + name
	}
	if len(name) > 63 {
		name = name[:61] + "-n"
	}
	return name
}

// volumeSource parses "cm:name", "secret:name", "pvc:name" or
// "emptyDir:size=1Gi,type=Memory" (also "ed:") into a volume source.
func volumeSource(spec string) (corev1.VolumeSource, error) {
	kind, arg, _ := strings.Cut(spec, ":")
	switch kind {
	case "cm", "config-map":
		return corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: arg}}}, nil
	case "secret", "sc":
		return corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: arg}}, nil
	case "pvc", "persistentVolumeClaim":
		return corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: arg}}, nil
	case "ed", "emptyDir":
		ed := &corev1.EmptyDirVolumeSource{}
		if arg != "" {
			set, _, err := keyValues(strings.Split(arg, ","), "emptyDir option")
			if err != nil {
				return corev1.VolumeSource{}, err
			}
			for _, kv := range set {
				switch kv[0] {
				case "type":
					if !strings.EqualFold(kv[1], string(corev1.StorageMediumMemory)) {
						return corev1.VolumeSource{}, fmt.Errorf("unsupported emptyDir type %q; the only type is Memory", kv[1])
					}
					ed.Medium = corev1.StorageMediumMemory
				case "size":
					q, err := resource.ParseQuantity(kv[1])
					if err != nil {
						return corev1.VolumeSource{}, fmt.Errorf("cannot parse emptyDir size %q: %w", kv[1], err)
					}
					ed.SizeLimit = &q
				default:
					return corev1.VolumeSource{}, fmt.Errorf("unsupported emptyDir option %q; supported are size and type", kv[0])
				}
			}
		}
		return corev1.VolumeSource{EmptyDir: ed}, nil
	}
	return corev1.VolumeSource{}, fmt.Errorf("unsupported volume type %q; supported volume types are config-map or cm, secret or sc, emptyDir or ed, persistentVolumeClaim or pvc", kind)
}

// setVolume adds or replaces the volume named name.
func setVolume(spec *corev1.PodSpec, name string, src corev1.VolumeSource) {
	for i := range spec.Volumes {
		if spec.Volumes[i].Name == name {
			spec.Volumes[i].VolumeSource = src
			return
		}
	}
	spec.Volumes = append(spec.Volumes, corev1.Volume{Name: name, VolumeSource: src})
}

// editVolumes applies --volume NAME=SPEC and NAME- entries, then --mount
// PATH=SPEC and PATH- entries, as kn does.
func editVolumes(spec *corev1.PodSpec, ctr *corev1.Container, volumes, mounts []string) error {
	set, unset, err := keyValues(volumes, "volume")
	if err != nil {
		return err
	}
	for _, kv := range set {
		src, err := volumeSource(kv[1])
		if err != nil {
			return err
		}
		setVolume(spec, kv[0], src)
	}
	removeVolumes := unset
	set, unset, err = keyValues(mounts, "mount")
	if err != nil {
		return err
	}
	for _, path := range unset {
		ctr.VolumeMounts = slices.DeleteFunc(ctr.VolumeMounts, func(m corev1.VolumeMount) bool {
			if m.MountPath == path && m.Name == generatedVolumeName(path) {
				removeVolumes = append(removeVolumes, m.Name)
			}
			return m.MountPath == path
		})
	}
	for _, kv := range set {
		path, ref := kv[0], kv[1]
		mount := corev1.VolumeMount{MountPath: path}
		if kind, rest, typed := strings.Cut(ref, ":"); typed {
			name, sub, _ := strings.Cut(rest, "/")
			mount.SubPath = sub
			switch kind {
			case "ed", "emptyDir":
				mount.Name = name
				setVolume(spec, name, corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}})
			default:
				src, err := volumeSource(kind + ":" + name)
				if err != nil {
					return err
				}
				mount.Name = generatedVolumeName(path)
				mount.ReadOnly = src.ConfigMap != nil || src.Secret != nil
				setVolume(spec, mount.Name, src)
			}
		} else {
			name, sub, _ := strings.Cut(ref, "/")
			if !slices.ContainsFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == name }) {
				return fmt.Errorf("there is no volume named %q to mount at %s", name, path)
			}
			mount.Name, mount.SubPath = name, sub
		}
		i := slices.IndexFunc(ctr.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == path })
		if i >= 0 {
			ctr.VolumeMounts[i] = mount
		} else {
			ctr.VolumeMounts = append(ctr.VolumeMounts, mount)
		}
	}
	for _, name := range removeVolumes {
		if slices.ContainsFunc(ctr.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == name }) {
			return fmt.Errorf("the volume %q cannot be removed because it is mounted", name)
		}
		spec.Volumes = slices.DeleteFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == name })
	}
	if len(spec.Volumes) == 0 {
		spec.Volumes = nil
	}
	if len(ctr.VolumeMounts) == 0 {
		ctr.VolumeMounts = nil
	}
	return nil
}
