package controlplane

import (
	"fmt"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

const contextName = "knd"

// writeKubeconfig writes a kubeconfig that reaches the API at server with the
// client certificate of id.
func writeKubeconfig(path, server string, pki PKI, id identity) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[contextName] = &clientcmdapi.Cluster{Server: server, CertificateAuthority: pki.CACert()}
	cfg.AuthInfos[id.user] = &clientcmdapi.AuthInfo{ClientCertificate: pki.ClientCert(id.file), ClientKey: pki.ClientKey(id.file)}
	cfg.Contexts[contextName] = &clientcmdapi.Context{Cluster: contextName, AuthInfo: id.user, Namespace: "default"}
	cfg.CurrentContext = contextName
	// Embed the files so the admin kubeconfig can be copied elsewhere and still work.
	if err := clientcmdapi.FlattenConfig(cfg); err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	return clientcmd.WriteToFile(*cfg, path)
}
