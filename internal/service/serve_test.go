package service

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/msdemo/msdemo/internal/auth"
	"github.com/msdemo/msdemo/internal/telemetry"
	"github.com/msdemo/msdemo/internal/testenv"
)

// startRuntime starts a runtime for t on a free port, announcing on an exchange of t's own.
func startRuntime(t *testing.T) *Runtime {
	t.Helper()
	conn := testenv.Bus(t)
	name := testenv.Name(t)
	key, err := auth.NewKey([]byte(strings.Repeat("k", auth.MinKeyBytes)))
	if err != nil {
		t.Fatal(err)
	}
	rt, err := Start(context.Background(), Config{Name: name, Addr: testenv.FreeAddr(t), RabbitMQURL: testenv.RabbitMQURL(),
		RegistryExchange: name + ".registry", TokenKey: key}, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		rt.Close()
		_ = conn.DeleteExchange(context.Background(), name+".registry")
	})
	return rt
}

// Cancelling Serve's context lets a request in flight finish, ends the tasks, and returns
// nil, even when a task answers the cancel with an error of its own.
func TestServeShutsDownGracefully(t *testing.T) {
	t.Parallel()
	rt := startRuntime(t)
	started, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "finished")
	})
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	taskEnded := make(chan struct{})
	go func() {
		served <- rt.Serve(ctx, h, func(ctx context.Context) error {
			defer close(taskEnded)
			<-ctx.Done()
			return errors.New("stopped because told to")
		})
	}()
	type answer struct {
		body string
		err  error
	}
	answered := make(chan answer, 1)
	go func() {
		resp, err := http.Get("http://" + rt.Listener.Addr().String() + "/")
		if err != nil {
			answered <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		answered <- answer{string(b), err}
	}()
	<-started
	cancel()
	<-taskEnded
	// Shutting down closes the listener first; the request in flight must survive it.
	testenv.Eventually(t, 10*time.Second, "the listener closes", func() bool {
		c, err := net.Dial("tcp", rt.Listener.Addr().String())
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	close(release)
	if a := <-answered; a.err != nil || a.body != "finished" {
		t.Errorf("request in flight: got %q, %v; want it finished", a.body, a.err)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: got %v, want nil after cancel", err)
	}
}

// A task that fails ends Serve with its error: the other tasks are told to stop and the
// server closes.
func TestServeEndsWhenATaskFails(t *testing.T) {
	t.Parallel()
	rt := startRuntime(t)
	boom := errors.New("boom")
	otherStopped := make(chan struct{})
	err := rt.Serve(context.Background(), http.NotFoundHandler(),
		func(ctx context.Context) error { return boom },
		func(ctx context.Context) error { <-ctx.Done(); close(otherStopped); return nil },
		func(ctx context.Context) error { return nil }) // ending early, without error, is no failure
	if !errors.Is(err, boom) {
		t.Errorf("Serve: got %v, want the task's error", err)
	}
	select {
	case <-otherStopped:
	default:
		t.Error("Serve returned before the other task stopped")
	}
	if resp, err := http.Get("http://" + rt.Listener.Addr().String() + "/"); err == nil {
		resp.Body.Close()
		t.Errorf("after Serve: got %d, want the server closed", resp.StatusCode)
	}
}

// A service given no token key (the zero auth.Key) does not start: it could verify no
// token, and a customer service could sign none.
func TestStartWithoutTokenKeyFails(t *testing.T) {
	_, err := Start(context.Background(), Config{Name: "keyless", Addr: testenv.FreeAddr(t), RabbitMQURL: testenv.RabbitMQURL()},
		testenv.Logger(t))
	if err == nil || !strings.Contains(err.Error(), "TokenKey") {
		t.Fatalf("Start without a key: got %v, want an error about Config.TokenKey", err)
	}
}

// A body over MaxBodyBytes makes the server close the connection after its answer, with
// metrics on too (their response wrapper is outermost, where http.MaxBytesReader must
// reach the server's own writer to tell it).
func TestServeClosesTheConnectionAfterABodyTooLarge(t *testing.T) {
	t.Parallel()
	rt := startRuntime(t)
	rt.Metrics = telemetry.New().For("order")
	routes := http.NewServeMux()
	routes.HandleFunc("POST /things", func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- rt.Serve(ctx, API(testenv.Logger(t), rt.TokenKey, func() bool { return true }, routes))
	}()
	t.Cleanup(func() { cancel(); <-served })

	body := strings.NewReader(strings.Repeat("x", MaxBodyBytes+1))
	resp, err := http.Post("http://"+rt.Listener.Addr().String()+"/things", "application/json", body)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !resp.Close {
		t.Errorf("got %d, Connection: close %v; want 413 and the connection closed", resp.StatusCode, resp.Close)
	}
}
