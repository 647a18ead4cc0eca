package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// sandboxProbes are the endpoints the sandbox tests ask from inside a pod.
func sandboxProbes(mux *http.ServeMux) {
	mux.HandleFunc("/id", func(w http.ResponseWriter, r *http.Request) {
		groups, _ := os.Getgroups()
		fmt.Fprintf(w, "uid=%d gid=%d groups=%v", os.Getuid(), os.Getgid(), groups)
	})
	mux.HandleFunc("/read", func(w http.ResponseWriter, r *http.Request) {
		b, err := os.ReadFile(r.URL.Query().Get("path"))
		if err != nil {
			fmt.Fprint(w, err)
			return
		}
		w.Write(b)
	})
	mux.HandleFunc("/write", func(w http.ResponseWriter, r *http.Request) {
		if err := os.WriteFile(r.URL.Query().Get("path"), []byte("1"), 0o644); err != nil {
			fmt.Fprint(w, err)
			return
		}
		fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("/stat", func(w http.ResponseWriter, r *http.Request) {
		fi, err := os.Stat(r.URL.Query().Get("path"))
		if err != nil {
			fmt.Fprint(w, err)
			return
		}
		st := fi.Sys().(*syscall.Stat_t)
		fmt.Fprintf(w, "%v %d %d", fi.Mode(), st.Uid, st.Gid)
	})
	mux.HandleFunc("/dial", func(w http.ResponseWriter, r *http.Request) {
		c, err := net.DialTimeout("tcp", r.URL.Query().Get("addr"), time.Second)
		if err != nil {
			fmt.Fprint(w, err)
			return
		}
		c.Close()
		fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("/fetch", func(w http.ResponseWriter, r *http.Request) {
		client := http.Client{Timeout: 5 * time.Second}
		resp, err := client.Get(r.URL.Query().Get("url"))
		if err != nil {
			fmt.Fprint(w, err)
			return
		}
		defer resp.Body.Close()
		io.Copy(w, resp.Body)
	})
	mux.HandleFunc("/kube", kubeHandler)
	mux.HandleFunc("/fill", func(w http.ResponseWriter, r *http.Request) {
		mb, _ := strconv.Atoi(r.URL.Query().Get("mb"))
		err := os.WriteFile(r.URL.Query().Get("path"), bytes.Repeat([]byte{'x'}, mb<<20), 0o644)
		if err != nil {
			fmt.Fprint(w, err)
			return
		}
		fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("/escape", func(w http.ResponseWriter, r *http.Request) {
		for _, line := range escapes(r.URL.Query().Get("path")) {
			fmt.Fprintln(w, line)
		}
	})
}

// escapes tries the known ways out of a changed root to read target, a
// file of the host's, and reports what each read.
func escapes(target string) []string {
	try := func(name, p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			return name + ": " + err.Error()
		}
		return name + ": READ " + strings.TrimSpace(string(b))
	}
	out := []string{
		try("direct", target),
		try("dotdot", "/../../../../../../.."+target),
		try("proc-root", "/proc/1/root"+target),
		try("proc-cwd", "/proc/1/cwd/../../../../.."+target),
	}
	// The classic: chroot into a subdirectory while the working directory
	// stays outside it, walk up past the root, and chroot there.
	dir, err := os.MkdirTemp("", "escape")
	if err != nil {
		return append(out, "chroot: "+err.Error())
	}
	if err := syscall.Chroot(dir); err != nil {
		return append(out, "chroot: "+err.Error())
	}
	for range 64 {
		_ = os.Chdir("..")
	}
	if err := syscall.Chroot("."); err != nil {
		return append(out, "chroot-walk: "+err.Error())
	}
	out = append(out, try("chroot-walk", target))
	// A symlink out of the root.
	link := filepath.Join(os.TempDir(), "escape-link")
	_ = os.Symlink("/../../../../.."+target, link)
	return append(out, try("symlink", link))
}
