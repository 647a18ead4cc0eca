package tcprelay

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// echo is a server that answers each line with "echo: " and the line.
func echo(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				s := bufio.NewScanner(c)
				for s.Scan() {
					if _, err := io.WriteString(c, "echo: "+s.Text()+"\n"); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return ln
}

// TestRelay: bytes both ways unchanged, at most max clients at once (the
// one past it is closed), a freed slot serves the next, Close ends all.
func TestRelay(t *testing.T) {
	target := echo(t)
	r, err := Start("127.0.0.1:0", target.Addr().String(), 2)
	if err != nil {
		t.Fatal(err)
	}
	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", r.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		return c, bufio.NewReader(c)
	}
	ask := func(c net.Conn, br *bufio.Reader, line string) (string, error) {
		if _, err := io.WriteString(c, line+"\n"); err != nil {
			return "", err
		}
		return br.ReadString('\n')
	}
	a, ar := dial()
	b, br := dial()
	for _, tc := range []struct {
		c  net.Conn
		br *bufio.Reader
	}{{a, ar}, {b, br}} {
		if got, err := ask(tc.c, tc.br, "hello"); err != nil || got != "echo: hello\n" {
			t.Fatalf("through the relay: %q %v", got, err)
		}
	}
	over, overr := dial()
	if got, err := ask(over, overr, "third"); err == nil {
		t.Errorf("a third client past the limit of 2 was relayed: %q", got)
	}
	a.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, cr := dial()
		got, err := ask(c, cr, "again")
		c.Close()
		if err == nil && got == "echo: again\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the freed slot does not serve: %q %v", got, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if got, err := ask(b, br, "after close"); err == nil && strings.HasPrefix(got, "echo") {
		t.Errorf("a relayed connection survived Close: %q", got)
	}
}
