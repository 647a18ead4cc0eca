package node

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"time"
)

// kubeletServer serves the kubelet endpoints the API server uses, over TLS,
// only to clients with a certificate from the cluster CA in the API
// server's kubelet-client identity or in system:masters.
type kubeletServer struct {
	agent *Agent
	srv   *http.Server
	ln    net.Listener
}

var allowedKubeletClients = []string{"kube-apiserver-kubelet-client"}

func newKubeletServer(a *Agent) (*kubeletServer, error) {
	cert, err := tls.LoadX509KeyPair(a.opts.KubeletCertFile, a.opts.KubeletKeyFile)
	if err != nil {
		return nil, err
	}
	caPEM, err := os.ReadFile(a.opts.ClientCAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("no CA certificate in %s", a.opts.ClientCAFile)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(a.opts.Address, strconv.Itoa(a.opts.KubeletPort)))
	if err != nil {
		return nil, err
	}
	s := &kubeletServer{agent: a, ln: ln}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /containerLogs/{namespace}/{pod}/{container}", s.containerLogs)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	s.srv = &http.Server{
		Handler:           s.authorize(mux),
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool,
			ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12},
	}
	return s, nil
}

func (s *kubeletServer) port() int { return s.ln.Addr().(*net.TCPAddr).Port }

func (s *kubeletServer) serve() error {
	err := s.srv.ServeTLS(s.ln, "", "")
	if err == http.ErrServerClosed {
		return nil
	}
	return err
}

func (s *kubeletServer) authorize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		subj := r.TLS.PeerCertificates[0].Subject
		if !slices.Contains(allowedKubeletClients, subj.CommonName) && !slices.Contains(subj.Organization, "system:masters") {
			http.Error(w, fmt.Sprintf("Forbidden (user=%s)", subj.CommonName), http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *kubeletServer) containerLogs(w http.ResponseWriter, r *http.Request) {
	ns, podName, name := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("container")
	o, err := parseLogOptions(r.URL.Query())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	runner := s.agent.container(ns, podName, name)
	if runner == nil {
		http.Error(w, fmt.Sprintf("container %q in pod %q is not available", name, podName), http.StatusNotFound)
		return
	}
	path, finished, err := runner.logPath(o.previous)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	if err := copyLog(r.Context(), w, path, o, finished); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}
