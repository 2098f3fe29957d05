package registry_test

import (
	"context"
	"testing"
	"time"

	"github.com/msdemo/msdemo/internal/registry"
	"github.com/msdemo/msdemo/internal/testenv"
)

// TestAnnounceListen runs Announce and Table.Listen against the real RabbitMQ, on an
// exchange of the test's own.
func TestAnnounceListen(t *testing.T) {
	t.Parallel()
	conn := testenv.Bus(t)
	exchange := testenv.Name(t)
	t.Cleanup(func() { conn.DeleteExchange(context.Background(), exchange) })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)

	table := registry.NewTable(0, map[string]string{"order": "http://static"})
	listening := make(chan error, 1)
	go func() { listening <- table.Listen(ctx, conn, registry.WithExchange(exchange)) }()
	// Listen declares the exchange first; Announce declares it too, so the order of the two
	// does not matter, but an announcement sent before the queue is bound is lost. Announce
	// repeats itself every 100 ms here, so that only delays the first one the table sees.
	inst := registry.Instance{Service: "order", Instance: "order-1", URL: "http://live"}
	annCtx, stopAnnouncing := context.WithCancel(ctx)
	announcing := make(chan error, 1)
	go func() {
		announcing <- registry.Announce(annCtx, conn, inst, 100*time.Millisecond, testenv.Logger(t), registry.WithExchange(exchange))
	}()

	testenv.Eventually(t, 5*time.Second, "announced instance never became the pick", func() bool {
		url, _ := table.Pick("order")
		return url == "http://live"
	})
	if got := table.Instances(); len(got) != 1 || got[0].Instance != inst {
		t.Errorf("Instances: got %v, want just %v", got, inst)
	}

	stopAnnouncing()
	if err := <-announcing; err != nil {
		t.Errorf("Announce after cancel: got %v, want nil", err)
	}
	// The leaving announcement drops it at once, long before the 6 s TTL.
	testenv.Eventually(t, 2*time.Second, "instance still picked after it left", func() bool {
		url, _ := table.Pick("order")
		return url == "http://static"
	})

	cancel()
	select {
	case err := <-listening:
		if err != nil {
			t.Errorf("Listen after cancel: got %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("Listen did not return within 10 s of cancel")
	}
}

func TestAnnounceRejectsIncompleteInstance(t *testing.T) {
	t.Parallel()
	conn := testenv.Bus(t)
	err := registry.Announce(context.Background(), conn, registry.Instance{Service: "order"}, 0, testenv.Logger(t))
	if err == nil {
		t.Errorf("Announce without instance and URL: got nil, want an error")
	}
}
