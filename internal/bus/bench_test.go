package bus_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/msdemo/msdemo/internal/bus"
)

// benchTarget declares a topic exchange bound to a durable queue, so that benchmarks measure
// persistent messages really routed and stored.
func benchTarget(b *testing.B, c *bus.Conn) string {
	b.Helper()
	ex := exchange(b, c)
	queue := uniqueName(b)
	cleanupQueues(b, c, queue)
	// Declare and bind the queue through a consumer that stops at once.
	ctx, cancel := context.WithCancel(b.Context())
	cons, err := c.Consume(ctx, bus.QueueConfig{Name: queue, Exchange: ex, Keys: []string{"bench"}, Durable: true},
		func(context.Context, bus.Delivery) error { return nil })
	if err != nil {
		b.Fatal(err)
	}
	cancel()
	<-cons.Done
	return ex
}

func benchMessage(i int) bus.Message {
	return bus.Message{
		ID:   strconv.Itoa(i),
		Type: "bench.happened",
		Body: []byte(`{"id":"` + strconv.Itoa(i) + `","stream":"bench-1","data":{"price_cents":1234,"name":"a typical event body"}}`),
	}
}

// BenchmarkPublishBatch publishes batches of 500 persistent messages, as the event store
// does, one batch at a time.
func BenchmarkPublishBatch(b *testing.B) {
	c := dial(b, uniqueName(b))
	ex := benchTarget(b, c)
	const size = 500
	batch := make([]bus.Routed, size)
	for i := range batch {
		batch[i] = bus.Routed{Key: "bench", Message: benchMessage(i)}
	}
	b.ResetTimer()
	start := time.Now()
	sent := 0
	for sent < b.N {
		n := min(size, b.N-sent)
		if err := c.PublishBatch(b.Context(), ex, batch[:n]); err != nil {
			b.Fatal(err)
		}
		sent += n
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// BenchmarkPublish calls Publish from many goroutines at once (64 on 2 cores), each
// waiting for its own confirm.
func BenchmarkPublish(b *testing.B) {
	c := dial(b, uniqueName(b))
	ex := benchTarget(b, c)
	msg := benchMessage(0)
	b.SetParallelism(32)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := c.Publish(b.Context(), ex, "bench", msg); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// BenchmarkPublishSequential is one goroutine calling Publish: one confirm round trip each.
func BenchmarkPublishSequential(b *testing.B) {
	c := dial(b, uniqueName(b))
	ex := benchTarget(b, c)
	msg := benchMessage(0)
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if err := c.Publish(b.Context(), ex, "bench", msg); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// BenchmarkCall makes RPC calls from many goroutines to a server with 8 workers, both on
// their own connections.
func BenchmarkCall(b *testing.B) {
	server := dial(b, uniqueName(b))
	client := dial(b, uniqueName(b))
	queue := uniqueName(b)
	cleanupQueues(b, server, queue)
	_, err := server.Serve(b.Context(), bus.QueueConfig{Name: queue, Concurrency: 8, Prefetch: 64},
		func(_ context.Context, d bus.Delivery) ([]byte, error) { return d.Body, nil })
	if err != nil {
		b.Fatal(err)
	}
	body := benchMessage(0).Body
	b.SetParallelism(32)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := client.Call(b.Context(), queue, body); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
}
