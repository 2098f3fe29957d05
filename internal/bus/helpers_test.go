package bus_test

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/msdemo/msdemo/internal/bus"
)

func rabbitURL() string {
	return cmp.Or(os.Getenv("RABBITMQ_URL"), "amqp://guest:guest@127.0.0.1:5672/")
}

// dial connects a Conn named name (with opts) for the test and closes it at cleanup.
func dial(tb testing.TB, name string, opts ...bus.DialOption) *bus.Conn {
	tb.Helper()
	if testing.Short() {
		tb.Skip("needs RabbitMQ; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := bus.Dial(ctx, rabbitURL(), testLogger(tb), append([]bus.DialOption{bus.WithName(name)}, opts...)...)
	if err != nil {
		tb.Fatalf("dial: %v (set RABBITMQ_URL, or start the broker with `rabbitmq-server -detached`)", err)
	}
	tb.Cleanup(func() {
		if err := c.Close(); err != nil {
			tb.Errorf("close: %v", err)
		}
	})
	return c
}

// uniqueName returns a lower-case name from the test's name plus a random suffix.
func uniqueName(tb testing.TB) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := strings.ToLower(strings.NewReplacer("/", "-", " ", "-").Replace(tb.Name()))
	return "bustest-" + name + "-" + hex.EncodeToString(b[:])
}

// cleanupQueues deletes queues (and their dead-letter queues) after the test, before c is
// closed.
func cleanupQueues(tb testing.TB, c *bus.Conn, queues ...string) {
	tb.Helper()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, q := range queues {
			for _, name := range []string{q, q + ".dead"} {
				if err := c.DeleteQueue(ctx, name); err != nil {
					tb.Logf("cleanup: %v", err)
				}
			}
		}
	})
}

// exchange declares a topic exchange for the test and deletes it at cleanup.
func exchange(tb testing.TB, c *bus.Conn) string {
	tb.Helper()
	name := uniqueName(tb)
	if err := c.DeclareExchange(context.Background(), name, "topic"); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.DeleteExchange(ctx, name); err != nil {
			tb.Logf("cleanup: %v", err)
		}
	})
	return name
}

// eventually polls cond every 20 ms until it holds or timeout passes.
func eventually(tb testing.TB, timeout time.Duration, cond func() bool) bool {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cond()
}

var connectionLine = regexp.MustCompile(`^(<[^>]+>)\s.*\{"connection_name","([^"]*)"\}`)

// dropConnections closes, through rabbitmqctl, every connection whose name starts with
// prefix (so tests running in parallel elsewhere keep theirs), and returns how many.
func dropConnections(tb testing.TB, prefix string) int {
	tb.Helper()
	out, err := exec.Command("rabbitmqctl", "list_connections", "pid", "client_properties", "-s").CombinedOutput()
	if err != nil {
		tb.Fatalf("rabbitmqctl list_connections: %v: %s", err, out)
	}
	n := 0
	for line := range strings.Lines(string(out)) {
		m := connectionLine.FindStringSubmatch(line)
		if m == nil || !strings.HasPrefix(m[2], prefix) {
			continue
		}
		if out, err := exec.Command("rabbitmqctl", "close_connection", m[1], "bus fault test").CombinedOutput(); err != nil {
			tb.Fatalf("rabbitmqctl close_connection %s: %v: %s", m[1], err, out)
		}
		n++
	}
	return n
}

// testLogger sends logs to t.Log until the test ends.
func testLogger(tb testing.TB) *slog.Logger {
	w := &testWriter{tb: tb}
	tb.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct {
	tb   testing.TB
	mu   sync.Mutex
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.tb.Log(string(bytes.TrimRight(p, "\n")))
	}
	return len(p), nil
}
