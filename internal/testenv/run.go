package testenv

import (
	"context"
	"testing"
	"time"
)

// Go runs fn until t ends; an error it returns fails t. Cleanup cancels its context and
// waits (15 s at most) for it to return. It is how a test runs a component (a Run
// function) beside itself.
func Go(t testing.TB, what string, fn func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: %v", what, err)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("%s did not stop within 15 s", what)
		}
	})
}
