package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// serviceAccountDir is where a pod finds its API credentials.
const serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount/"

// kubeHandler answers GET /kube?path=P[&host=H]: the status and body of GET
// P on the API server, found and trusted as client-go's in-cluster
// configuration does (KUBERNETES_SERVICE_HOST/PORT, the service account's
// CA and token), or at H:$KUBERNETES_SERVICE_PORT.
func kubeHandler(w http.ResponseWriter, r *http.Request) {
	host := os.Getenv("KUBERNETES_SERVICE_HOST")
	if h := r.URL.Query().Get("host"); h != "" {
		host = h
	}
	token, err := os.ReadFile(serviceAccountDir + "token")
	if err != nil {
		fmt.Fprint(w, err)
		return
	}
	ca, err := os.ReadFile(serviceAccountDir + "ca.crt")
	if err != nil {
		fmt.Fprint(w, err)
		return
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca)
	client := http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	req, err := http.NewRequest(http.MethodGet, "https://"+net.JoinHostPort(host, os.Getenv("KUBERNETES_SERVICE_PORT"))+r.URL.Query().Get("path"), nil)
	if err != nil {
		fmt.Fprint(w, err)
		return
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	resp, err := client.Do(req)
	if err != nil {
		fmt.Fprint(w, err)
		return
	}
	defer resp.Body.Close()
	fmt.Fprintf(w, "%d ", resp.StatusCode)
	io.Copy(w, resp.Body)
}
