package service

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/msdemo/msdemo/internal/testenv"
)

// startRuntime starts a runtime for t on a free port, announcing on an exchange of t's own.
func startRuntime(t *testing.T) *Runtime {
	t.Helper()
	conn := testenv.Bus(t)
	name := testenv.Name(t)
	rt, err := Start(context.Background(), Config{Name: name, Addr: testenv.FreeAddr(t), RabbitMQURL: testenv.RabbitMQURL(),
		RegistryExchange: name + ".registry"}, testenv.Logger(t))
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
