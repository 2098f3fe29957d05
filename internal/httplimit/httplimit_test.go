package httplimit_test

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/msdemo/msdemo/internal/httplimit"
	"github.com/msdemo/msdemo/internal/testenv"
)

// serve runs a net/http server with limits on a free loopback port until t ends: GET /
// answers "ok", POST /echo reads the whole body and answers its length.
func serve(t *testing.T, limits httplimit.Limits) string {
	t.Helper()
	ln, err := net.Listen("tcp", testenv.FreeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
		}
	})
	srv := &http.Server{Handler: mux}
	limits.Apply(srv)
	go srv.Serve(limits.Listener(ln))
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// TestSlowHeaders opens 500 connections from one address that send their headers a byte
// at a time: at most MaxConnsPerIP of them are kept, the server closes those after
// ReadHeaderTimeout, and another client is served meanwhile.
func TestSlowHeaders(t *testing.T) {
	const perIP, headerTimeout = 20, time.Second
	addr := serve(t, httplimit.Limits{ReadHeaderTimeout: headerTimeout, ReadTimeout: 2 * headerTimeout, MaxConnsPerIP: perIP})
	wait := testenv.Slowloris(t, addr, "127.0.0.2", "/", testenv.SlowHeaders, 500)
	testenv.StayResponsive(t, "http://"+addr+"/", headerTimeout+headerTimeout/2)
	testenv.CheckSlowClosed(t, wait(headerTimeout+5*time.Second), perIP, headerTimeout)
}

// TestSlowBody opens 100 connections that send their body a byte at a time, with no
// per-address cap: ReadTimeout cuts each off, and another client is served meanwhile.
func TestSlowBody(t *testing.T) {
	const readTimeout = 1500 * time.Millisecond
	addr := serve(t, httplimit.Limits{ReadHeaderTimeout: time.Second, ReadTimeout: readTimeout, MaxConnsPerIP: httplimit.NoCap})
	wait := testenv.Slowloris(t, addr, "127.0.0.2", "/echo", testenv.SlowBody, 100)
	testenv.StayResponsive(t, "http://"+addr+"/", readTimeout)
	testenv.CheckSlowClosed(t, wait(readTimeout+5*time.Second), 100, readTimeout)
}

// TestPerIP: the third connection of one address is closed at once, another address's is
// accepted, and a closed connection gives its place back.
func TestPerIP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	limited := httplimit.PerIP(ln, 2)
	defer limited.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := limited.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func(from string) net.Conn {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		c, err := d.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// accept dials from and reports whether the listener handed the connection on
	// (else the server closed it: the client reads EOF).
	accept := func(from string) (client, server net.Conn) {
		t.Helper()
		client = dial(from)
		closed := make(chan struct{})
		go func() {
			client.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := client.Read(make([]byte, 1)); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				close(closed)
			}
		}()
		select {
		case server = <-accepted:
			return client, server
		case <-closed:
			return client, nil
		case <-time.After(5 * time.Second):
			t.Fatalf("a connection from %s was neither accepted nor closed", from)
			return nil, nil
		}
	}
	_, a := accept("127.0.0.2")
	_, b := accept("127.0.0.2")
	if a == nil || b == nil {
		t.Fatalf("the first two connections of 127.0.0.2: accepted %v and %v, want both", a != nil, b != nil)
	}
	if _, c := accept("127.0.0.2"); c != nil {
		t.Errorf("a third connection of 127.0.0.2 was accepted, want it closed")
	}
	if _, c := accept("127.0.0.3"); c == nil {
		t.Errorf("a connection of 127.0.0.3 was closed, want it accepted")
	}
	a.Close()
	a.Close() // a second Close gives nothing back
	if _, c := accept("127.0.0.2"); c == nil {
		t.Errorf("after one was closed, a new connection of 127.0.0.2 was closed, want it accepted")
	}
	if _, c := accept("127.0.0.2"); c != nil {
		t.Errorf("a third open connection of 127.0.0.2 (after a double Close) was accepted, want it closed")
	}
}
