// Package testenv gives tests the real servers they run against, and fails a test with a
// hint when one is not reachable (it skips only under -short).
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mathrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/msdemo/msdemo/internal/bus"
)

// RabbitMQURL is the broker tests use: RABBITMQ_URL or the local default.
func RabbitMQURL() string {
	if u := os.Getenv("RABBITMQ_URL"); u != "" {
		return u
	}
	return "amqp://guest:guest@127.0.0.1:5672/"
}

// Bus dials RabbitMQ for t and closes the connection when t ends.
func Bus(t testing.TB) *bus.Conn {
	t.Helper()
	if testing.Short() {
		t.Skip("needs RabbitMQ; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := bus.Dial(ctx, RabbitMQURL(), Logger(t))
	if err != nil {
		t.Fatalf("RabbitMQ not reachable at RABBITMQ_URL (start it with `rabbitmq-server -detached`): %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// Name returns a name unique to this test run, for queues and exchanges: the test's name
// (made safe) and a random suffix.
func Name(t testing.TB) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, t.Name())
	return "test-" + name + "-" + hex.EncodeToString(b[:])
}

// Logger sends a component's logs to t.Log.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// FreeAddr returns a loopback address with a port that was free a moment ago. The port is
// drawn below Linux's ephemeral range (32768 and up), where the kernel also picks the
// local ports of outgoing connections: a port from there can be taken by one of the many
// connections the tests open before the component that was given it listens.
func FreeAddr(t testing.TB) string {
	t.Helper()
	addr, err := FreeLoopbackAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// FreeLoopbackAddr is FreeAddr for commands (the bench): a free 127.0.0.1 port in
// 20000-31999, below Linux's ephemeral range, so that no outgoing connection takes it
// between now and the listen. The port is also reserved for this process until it exits
// (reservePort): a test that kills a component and starts it again on its port leaves the
// port free meanwhile, and another test process must not be given it then.
func FreeLoopbackAddr() (string, error) {
	for range 100 {
		port := 20000 + mathrand.IntN(12000)
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue // taken
		}
		ln.Close()
		if !reservePort(port) {
			continue // another live process holds it
		}
		return ln.Addr().String(), nil
	}
	return "", errors.New("no free port found in 127.0.0.1:20000-31999")
}

// portReservations is the directory of the ports that processes of this machine were
// given: a file per port, holding the pid of its process.
var portReservations = filepath.Join(os.TempDir(), "msdemo-test-ports")

// reservePort records port as this process's, unless a live process has it already; a
// reservation of a process that has exited is taken over. Reservations are never
// released: a process keeps its ports (and may restart a component on one) until it ends.
func reservePort(port int) bool {
	if err := os.MkdirAll(portReservations, 0o777); err != nil {
		return true // no place to record it: the listen check alone
	}
	name := filepath.Join(portReservations, strconv.Itoa(port))
	for range 2 {
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
		if err == nil {
			_, _ = f.WriteString(strconv.Itoa(os.Getpid()))
			return f.Close() == nil
		}
		b, err := os.ReadFile(name)
		if err != nil {
			return false
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err == nil && (pid == os.Getpid() || processAlive(pid)) {
			return false
		}
		_ = os.Remove(name) // its process has exited (or it is unreadable): take it over
	}
	return false
}

// processAlive reports whether a process with pid exists.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// WaitHealthy polls url until it answers 200, failing t after timeout.
func WaitHealthy(t testing.TB, url string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not healthy after %s: last error %v", url, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Eventually polls cond every 20 ms until it is true, failing t with msg after timeout.
func Eventually(t testing.TB, timeout time.Duration, msg string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
