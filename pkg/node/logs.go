package node

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// logFile receives a container's stdout and stderr. Each line is stored as
// "<RFC3339Nano time> <stream> <text>" (the CRI log format), so logs can be
// served with or without timestamps.
type logFile struct {
	mu sync.Mutex
	f  *os.File
}

func createLog(path string) (*logFile, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	return &logFile{f: f}, nil
}

func (l *logFile) stream(name string) io.Writer { return &lineWriter{log: l, stream: name} }

func (l *logFile) write(b []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = l.f.Write(b)
}

func (l *logFile) Close() error { return l.f.Close() }

// lineWriter splits a stream into lines; a line longer than 16 KiB is cut.
// The lines of one Write go to the file in one write, all with the time
// of the Write: a pod logging every request would otherwise cost knd a
// system call per request.
type lineWriter struct {
	log      *logFile
	stream   string
	partial  []byte
	out      []byte
	stampBuf [40]byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	w.out = w.out[:0]
	var stamp []byte
	line := func(text []byte) {
		if stamp == nil {
			stamp = time.Now().UTC().AppendFormat(w.stampBuf[:0], time.RFC3339Nano)
		}
		w.out = append(w.out, stamp...)
		w.out = append(append(append(w.out, ' '), w.stream...), ' ')
		w.out = append(append(w.out, text...), '\n')
	}
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.partial = append(w.partial, p...)
			if len(w.partial) > 16<<10 {
				line(w.partial)
				w.partial = w.partial[:0]
			}
			break
		}
		if len(w.partial) > 0 {
			line(append(w.partial, p[:i]...))
			w.partial = w.partial[:0]
		} else {
			line(p[:i])
		}
		p = p[i+1:]
	}
	if len(w.out) > 0 {
		w.log.write(w.out)
	}
	if cap(w.out) > 64<<10 {
		w.out = nil // a burst's buffer is not kept
	}
	return n, nil
}

// logOptions are the kubelet's containerLogs query parameters.
type logOptions struct {
	follow, previous, timestamps bool
	tailLines, limitBytes        int64
	since                        time.Time
}

func parseLogOptions(q map[string][]string) (logOptions, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	o := logOptions{follow: get("follow") == "true", previous: get("previous") == "true",
		timestamps: get("timestamps") == "true", tailLines: -1}
	for k, dst := range map[string]*int64{"tailLines": &o.tailLines, "limitBytes": &o.limitBytes} {
		if v := get(k); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return o, fmt.Errorf("invalid %s %q", k, v)
			}
			*dst = n
		}
	}
	if v := get("sinceSeconds"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return o, fmt.Errorf("invalid sinceSeconds %q", v)
		}
		o.since = time.Now().Add(-time.Duration(n) * time.Second)
	}
	if v := get("sinceTime"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return o, fmt.Errorf("invalid sinceTime %q", v)
		}
		o.since = t
	}
	return o, nil
}

// copyLog writes the log at path to w as options ask; with follow it keeps
// reading until finished is closed (the container run ended) or ctx ends.
func copyLog(ctx context.Context, w io.Writer, path string, o logOptions, finished <-chan struct{}) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	flush := func() {
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
	}
	var written int64
	emit := func(line string) bool {
		ts, rest, _ := strings.Cut(line, " ")
		_, text, _ := strings.Cut(rest, " ")
		if !o.since.IsZero() {
			if t, err := time.Parse(time.RFC3339Nano, ts); err == nil && t.Before(o.since) {
				return true
			}
		}
		out := text + "\n"
		if o.timestamps {
			out = ts + " " + out
		}
		if o.limitBytes > 0 && written+int64(len(out)) > o.limitBytes {
			out = out[:o.limitBytes-written]
		}
		n, err := io.WriteString(w, out)
		written += int64(n)
		return err == nil && (o.limitBytes == 0 || written < o.limitBytes)
	}
	r := bufio.NewReader(f)
	var lines []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			// A partial last line is re-read when following.
			if _, serr := f.Seek(-int64(len(line)), io.SeekCurrent); serr != nil {
				return serr
			}
			r.Reset(f)
			break
		}
		lines = append(lines, strings.TrimSuffix(line, "\n"))
		if o.tailLines >= 0 && int64(len(lines)) > o.tailLines {
			lines = slices.Delete(lines, 0, 1)
		}
	}
	for _, l := range lines {
		if !emit(l) {
			return nil
		}
	}
	flush()
	if !o.follow {
		return nil
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var pending string
	for {
		line, err := r.ReadString('\n')
		if err == nil {
			if !emit(strings.TrimSuffix(pending+line, "\n")) {
				return nil
			}
			pending = ""
			continue
		}
		pending += line
		flush()
		select {
		case <-ctx.Done():
			return nil
		case <-finished:
			// One last read for lines written just before the end.
			rest, _ := io.ReadAll(r)
			for _, l := range strings.SplitAfter(pending+string(rest), "\n") {
				if strings.HasSuffix(l, "\n") && !emit(strings.TrimSuffix(l, "\n")) {
					return nil
				}
			}
			return nil
		case <-tick.C:
		}
	}
}
