package eventclient

import (
	"context"
	"testing"
	"time"
)

func TestProgressWait(t *testing.T) {
	p := NewProgress()
	go func() {
		time.Sleep(10 * time.Millisecond)
		p.Advance(3)
		p.Advance(2) // going back is ignored
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Wait(ctx, 3, nil); err != nil {
		t.Fatalf("Wait(3): %v", err)
	}
	if got := p.Applied(); got != 3 {
		t.Fatalf("Applied: got %d, want 3", got)
	}
	// Another replica applied position 7: the shared checkpoint says so.
	if err := p.Wait(ctx, 7, func(context.Context) (int64, error) { return 7, nil }); err != nil {
		t.Fatalf("Wait(7) with checkpoint 7: %v", err)
	}
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := p.Wait(short, 8, nil); err == nil {
		t.Fatal("Wait(8) returned nil, want the context's error")
	}
}
