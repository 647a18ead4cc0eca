// Command testserver is the app the node agent's tests run: an HTTP server
// on $PORT whose behaviour is switched by environment variables.
//
//	testserver true|false  exit 0 or 1 at once (for exec probes)
//	testserver symlink T L  make L a symlink to T, and exit
//	EXIT_CODE=N       exit with N right after start (before listening)
//	IGNORE_SIGTERM=1  keep running on SIGTERM (so the agent must SIGKILL)
//	ALLOC_MB=N        allocate and touch N MiB at start
//
// GET /            "hello from <HOSTNAME>" plus $GREETING
// GET /env?k=NAME  the value of NAME
// GET /healthz     200, or 500 once /fail has been called
// GET /fail        makes /healthz fail from then on
// GET /cwd         the working directory
// GET /headers     the request's Host and headers, one "Name: value" per line
// GET /slow?ms=N    answers after N ms; with MAX_CONCURRENCY=M set, 500
//
//	when more than M requests are in flight at once
//
// GET /proto       the request's protocol (HTTP/1.1, HTTP/2.0)
// GET /stream?n=N&ms=M  N lines "chunk i", each flushed, M ms apart
// GET /upgrade     with "Upgrade: echo": 101, then echoes the connection's bytes
// GET /id          "uid=U gid=G groups=[...]" of the process
// GET /read?path=P    the file P, or the error reading it
// GET /write?path=P   writes "1" to P: "ok" or the error
// GET /stat?path=P    "MODE UID GID" of P (symlinks followed), or the error
// GET /dial?addr=A    "ok" if a TCP connection to A opens within 1 s, else the error
// GET /fetch?url=U    the body of GET U, or the error
// GET /fill?path=P&mb=N  writes N MiB to P: "ok" or the error
// GET /kube?path=P[&host=H]  "STATUS BODY" of GET P on the API server, as an
//
//	in-cluster client reaches it (at H instead of KUBERNETES_SERVICE_HOST)
//
// GET /escape?path=P  tries the known ways out of a chroot to read P (outside
//
//	the root): what each found, one per line
//
// LISTEN=ADDR listens on ADDR instead of :$PORT (an app that ignores PORT).
//
// The server also speaks HTTP/2 without TLS (prior knowledge), as an h2c
// port needs.
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 {
		switch {
		case os.Args[1] == "true":
			os.Exit(0)
		case os.Args[1] == "symlink" && len(os.Args) == 4:
			if err := os.Symlink(os.Args[2], os.Args[3]); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			os.Exit(0)
		}
		os.Exit(1)
	}
	if code := os.Getenv("EXIT_CODE"); code != "" {
		n, _ := strconv.Atoi(code)
		fmt.Fprintf(os.Stderr, "exiting with %d as asked\n", n)
		os.Exit(n)
	}
	// Handle SIGTERM before printing anything a test waits for: as PID 1 of
	// its namespace, the process would otherwise ignore a SIGTERM that
	// arrives before the handler (Go then exits with 2).
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	go func() {
		for range sigs {
			if os.Getenv("IGNORE_SIGTERM") == "1" {
				fmt.Println("ignoring SIGTERM")
				continue
			}
			fmt.Println("SIGTERM: exiting")
			os.Exit(0)
		}
	}()
	if mb, _ := strconv.Atoi(os.Getenv("ALLOC_MB")); mb > 0 {
		buf := make([]byte, mb<<20)
		for i := range buf {
			buf[i] = 1
		}
		fmt.Printf("allocated %d MiB\n", len(buf)>>20)
	}
	var failing atomic.Bool
	failing.Store(os.Getenv("UNHEALTHY") == "1") // /healthz fails from the start
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Printf("request %s\n", r.URL.Path)
		fmt.Fprintf(w, "hello from %s %s\n", os.Getenv("HOSTNAME"), os.Getenv("GREETING"))
	})
	mux.HandleFunc("/env", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, os.Getenv(r.URL.Query().Get("k")))
	})
	mux.HandleFunc("/headers", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "Host: %s\n", r.Host)
		for k, vs := range r.Header {
			for _, v := range vs {
				fmt.Fprintf(w, "%s: %s\n", k, v)
			}
		}
	})
	mux.HandleFunc("/cwd", func(w http.ResponseWriter, r *http.Request) {
		wd, _ := os.Getwd()
		fmt.Fprint(w, wd)
	})
	var inflight atomic.Int64
	limit, _ := strconv.ParseInt(os.Getenv("MAX_CONCURRENCY"), 10, 64)
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		n := inflight.Add(1)
		defer inflight.Add(-1)
		if limit > 0 && n > limit {
			http.Error(w, fmt.Sprintf("%d requests in flight, limit %d", n, limit), http.StatusInternalServerError)
			return
		}
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		time.Sleep(time.Duration(ms) * time.Millisecond)
		fmt.Fprintf(w, "slept %d ms on %s\n", ms, os.Getenv("HOSTNAME"))
	})
	mux.HandleFunc("/proto", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, r.Proto) })
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		for i := range n {
			if i > 0 {
				time.Sleep(time.Duration(ms) * time.Millisecond)
			}
			fmt.Fprintf(w, "chunk %d\n", i)
			_ = http.NewResponseController(w).Flush()
		}
	})
	mux.HandleFunc("/upgrade", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			http.Error(w, "want Upgrade: echo", http.StatusBadRequest)
			return
		}
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer conn.Close()
		buf.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		buf.Flush()
		io.Copy(conn, buf)
	})
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) { failing.Store(true) })
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			http.Error(w, "failing as asked", http.StatusInternalServerError)
		}
	})
	sandboxProbes(mux)
	addr := ":" + os.Getenv("PORT")
	if l := os.Getenv("LISTEN"); l != "" {
		addr = l
	}
	fmt.Printf("listening on %s\n", addr)
	srv := &http.Server{Addr: addr, Handler: mux, Protocols: new(http.Protocols)}
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
