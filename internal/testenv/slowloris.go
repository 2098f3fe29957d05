package testenv

import (
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// SlowMode is how a Slowloris connection sends its request.
type SlowMode int

const (
	// SlowHeaders sends a request's headers a byte at a time and never ends them.
	SlowHeaders SlowMode = iota
	// SlowBody sends the complete headers of a POST with a 1 MiB body, then the body a
	// byte at a time.
	SlowBody
)

// SlowConn is what became of one Slowloris connection: how long it lived from its dial
// until the server closed it, and whether it was (zero Lived and false while still open).
type SlowConn struct {
	Lived  time.Duration
	Closed bool
}

// Slowloris opens n connections to addr (host:port) from the local IP from (e.g.
// "127.0.0.2", so that the server sees another client than the test's own requests from
// 127.0.0.1), each sending a request for path in mode, one byte every 50 ms, until the
// server closes the connection. It returns once all are open; wait blocks until the
// server has closed each of them or within has passed since they opened, closes those
// still open, and returns what became of each. A connection that cannot be opened fails t.
func Slowloris(t testing.TB, addr, from, path string, mode SlowMode, n int) (wait func(within time.Duration) []SlowConn) {
	t.Helper()
	head := "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nUser-Agent: slowloris\r\nX-Padding: " + strings.Repeat("a", 1<<16)
	if mode == SlowBody {
		head = "POST " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nContent-Type: application/json\r\nContent-Length: 1048576\r\n\r\n"
	}
	dialer := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	conns := make([]net.Conn, n)
	opened := make([]time.Time, n)
	for i := range conns {
		opened[i] = time.Now()
		c, err := dialer.Dial("tcp", addr)
		if err != nil {
			for _, c := range conns[:i] {
				c.Close()
			}
			t.Fatalf("slowloris: connection %d of %d from %s to %s: %v", i+1, n, from, addr, err)
		}
		conns[i] = c
	}
	start := time.Now()
	var mu sync.Mutex // guards results
	results := make([]SlowConn, n)
	var wg sync.WaitGroup
	for i, c := range conns {
		closed := make(chan struct{})
		// The reader notices the server closing the connection (EOF, a reset, or an
		// error answer followed by EOF).
		wg.Go(func() {
			defer close(closed)
			buf := make([]byte, 4096)
			for {
				if _, err := c.Read(buf); err != nil {
					mu.Lock()
					results[i] = SlowConn{Lived: time.Since(opened[i]), Closed: true}
					mu.Unlock()
					return
				}
			}
		})
		wg.Go(func() {
			trickle := head
			if mode == SlowBody { // the headers at once, the body byte by byte
				if _, err := c.Write([]byte(head)); err != nil {
					return
				}
				trickle = strings.Repeat("x", 1<<20)
			}
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for j := 0; ; j = (j + 1) % len(trickle) {
				select {
				case <-closed:
					return
				case <-tick.C:
				}
				if _, err := c.Write([]byte{trickle[j]}); err != nil {
					return
				}
			}
		})
	}
	return func(within time.Duration) []SlowConn {
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(time.Until(start.Add(within))):
		}
		mu.Lock()
		snapshot := append([]SlowConn(nil), results...)
		mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
		<-done
		return snapshot
	}
}

// StayResponsive sends GET url every 100 ms for d, from this machine's default address
// (127.0.0.1 for a loopback url), and fails t for each answer that is not a 200 within 5 s
// (the request timeout a client would have).
func StayResponsive(t testing.TB, url string, d time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var wg sync.WaitGroup
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		wg.Go(func() {
			resp, err := client.Get(url)
			if err != nil {
				t.Errorf("a normal request while the slow clients wait: %v", err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("a normal request while the slow clients wait: got %d, want 200", resp.StatusCode)
			}
		})
	}
	wg.Wait()
}

// CheckSlowClosed fails t unless the server closed every one of conns (from Slowloris),
// at most held of them after it kept them waiting for timeout (the others sooner: refused
// at once), and at least one after the timeout (else they never reached the server).
func CheckSlowClosed(t testing.TB, conns []SlowConn, held int, timeout time.Duration) {
	t.Helper()
	var open, kept int
	for _, c := range conns {
		switch {
		case !c.Closed:
			open++
		case c.Lived >= timeout-100*time.Millisecond:
			kept++
		}
	}
	if open > 0 {
		t.Errorf("%d of %d slow connections still open when the wait ended, want all closed by the server", open, len(conns))
	}
	if kept > held {
		t.Errorf("%d slow connections were kept until the timeout, want at most %d", kept, held)
	}
	if kept == 0 {
		t.Errorf("no slow connection was kept until the timeout: did they reach the server?")
	}
}
