package main

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/msdemo/msdemo/internal/bus"
	"github.com/msdemo/msdemo/internal/event"
)

// busRuns are the broker's raw rates and what they bound.
type busRuns struct {
	// EventsPerOrder are the events one order stored, by type, read from the event
	// store's feed around a probe order placed while nothing else ran.
	EventsPerOrder map[string]int `json:"events_per_order"`
	// QueueCopies is how many queues of the vhost msdemo.events routes each of those
	// types to (from rabbitmqctl list_bindings).
	QueueCopies map[string]int `json:"queue_copies"`
	// MessagesPerOrder = per event: the append request and its reply (one append per
	// event in the saga) plus one copy per bound queue.
	MessagesPerOrder int `json:"broker_messages_per_order"`
	// PublishesPerOrder counts publishes only (request, reply, event).
	PublishesPerOrder int     `json:"publishes_per_order"`
	BatchRate         float64 `json:"publish_batch_100_msgs_per_sec"`
	SingleRate        float64 `json:"publish_64_goroutines_msgs_per_sec"`
	OrdersBound       float64 `json:"bus_bound_orders_per_sec"`
	OrdersOfBound     float64 `json:"orders_per_sec_over_bound"`
}

// messagesPerOrder places one order while the shop is otherwise idle, waits for its
// invoice, counts the events it stored and how many queues each is routed to.
func (s *shop) messagesPerOrder(ctx context.Context) (busRuns, error) {
	res := busRuns{EventsPerOrder: map[string]int{}, QueueCopies: map[string]int{}}
	head, err := s.feedHead(ctx)
	if err != nil {
		return res, err
	}
	id, err := s.placeOrder(ctx, s.customers[0], s.products[0])
	if err != nil {
		return res, err
	}
	var events []event.Stored
	err = s.poll(ctx, 30*time.Second, func() bool {
		var page struct{ Events []event.Stored }
		if s.api(ctx, http.MethodGet, "/eventstore/events?after="+strconv.FormatInt(head, 10)+"&limit=100", s.admin, nil, &page) != http.StatusOK {
			return false
		}
		events = page.Events
		return slices.ContainsFunc(events, func(e event.Stored) bool { return e.Type == "invoice.issued" })
	})
	if err != nil {
		return res, fmt.Errorf("the probe order %s was not invoiced: %w", id, err)
	}
	time.Sleep(500 * time.Millisecond) // a release or a late step after the invoice
	var page struct{ Events []event.Stored }
	if s.api(ctx, http.MethodGet, "/eventstore/events?after="+strconv.FormatInt(head, 10)+"&limit=100", s.admin, nil, &page) == http.StatusOK {
		events = page.Events
	}
	bindings, err := s.bindings()
	if err != nil {
		return res, err
	}
	for _, e := range events {
		res.EventsPerOrder[e.Type]++
		queues := map[string]bool{}
		for _, b := range bindings {
			if event.TypeMatches([]string{b.key}, e.Type) {
				queues[b.queue] = true
			}
		}
		res.QueueCopies[e.Type] = len(queues)
		res.MessagesPerOrder += 2 + len(queues)
		res.PublishesPerOrder += 3
	}
	return res, nil
}

// feedHead is the position of the last stored event.
func (s *shop) feedHead(ctx context.Context) (int64, error) {
	var head int64
	for {
		var page struct{ Events []event.Stored }
		if st := s.api(ctx, http.MethodGet, "/eventstore/events?after="+strconv.FormatInt(head, 10)+"&limit=500", s.admin, nil, &page); st != http.StatusOK {
			return 0, fmt.Errorf("read the event feed: got %d", st)
		}
		if len(page.Events) == 0 {
			return head, nil
		}
		head = page.Events[len(page.Events)-1].Position
	}
}

// queueDepths are the messages ready and unacknowledged in each queue of the vhost that
// holds any, nil if rabbitmqctl fails.
func (s *shop) queueDepths() map[string]int {
	out, err := exec.Command("rabbitmqctl", "list_queues", "-p", s.vhost, "-q", "--no-table-headers", "name", "messages").Output()
	if err != nil {
		return nil
	}
	depths := map[string]int{}
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		if n, _ := strconv.Atoi(f[1]); n > 0 {
			depths[f[0]] = n
		}
	}
	return depths
}

type binding struct{ queue, key string }

// bindings are the queue bindings of msdemo.events in the shop's vhost.
func (s *shop) bindings() ([]binding, error) {
	out, err := exec.Command("rabbitmqctl", "list_bindings", "-p", s.vhost, "-q", "--no-table-headers",
		"source_name", "destination_kind", "destination_name", "routing_key").Output()
	if err != nil {
		return nil, fmt.Errorf("rabbitmqctl list_bindings: %w", err)
	}
	var bs []binding
	for line := range strings.Lines(string(out)) {
		f := strings.Split(strings.TrimRight(line, "\n"), "\t")
		if len(f) == 4 && f[0] == event.Exchange && f[1] == "queue" {
			bs = append(bs, binding{queue: f[2], key: f[3]})
		}
	}
	if len(bs) == 0 {
		return nil, fmt.Errorf("rabbitmqctl list_bindings: no queue bound to %s in %s", event.Exchange, s.vhost)
	}
	return bs, nil
}

// brokerRuns measures confirmed persistent publishes into one durable queue in the shop's
// vhost: PublishBatch of 100 messages at a time for d, then Publish from 64 goroutines for d.
func (s *shop) brokerRuns(ctx context.Context, d time.Duration, res *busRuns) error {
	conn, err := bus.Dial(ctx, s.busURL, quiet(s.logger), bus.WithName("bench publishes"))
	if err != nil {
		return fmt.Errorf("connect to RabbitMQ: %w", err)
	}
	defer conn.Close()
	exchange, queue := "bench.raw", "bench.raw."+randomHex(4)
	if err := conn.DeclareExchange(ctx, exchange, "topic"); err != nil {
		return err
	}
	cctx, cancel := context.WithCancel(ctx) // declare and bind the queue through a consumer that stops at once
	cons, err := conn.Consume(cctx, bus.QueueConfig{Name: queue, Exchange: exchange, Keys: []string{"bench"}, Durable: true},
		func(context.Context, bus.Delivery) error { return nil })
	if err != nil {
		cancel()
		return fmt.Errorf("declare %s: %w", queue, err)
	}
	cancel()
	<-cons.Done
	defer func() { _ = conn.DeleteQueue(context.Background(), queue) }()
	msg := func(i int) bus.Message {
		return bus.Message{ID: strconv.Itoa(i), Type: "bench.happened",
			Body: []byte(`{"id":"` + strconv.Itoa(i) + `","stream":"bench-1","data":{"price_cents":1234,"name":"a typical event body"}}`)}
	}

	batch := make([]bus.Routed, 100)
	for i := range batch {
		batch[i] = bus.Routed{Key: "bench", Message: msg(i)}
	}
	sent := 0
	start := time.Now()
	for until := start.Add(d); time.Now().Before(until); sent += len(batch) {
		if err := conn.PublishBatch(ctx, exchange, batch); err != nil {
			return fmt.Errorf("publish a batch: %w", err)
		}
	}
	res.BatchRate = float64(sent) / time.Since(start).Seconds()

	var n atomic.Int64
	var wg sync.WaitGroup
	start = time.Now()
	until := start.Add(d)
	for range 64 {
		wg.Go(func() {
			for time.Now().Before(until) {
				if conn.Publish(ctx, exchange, "bench", msg(0)) == nil {
					n.Add(1)
				}
			}
		})
	}
	wg.Wait()
	res.SingleRate = float64(n.Load()) / time.Since(start).Seconds()
	return nil
}

// bound sets the bus bound for orders: the best raw rate divided by the broker messages
// one order needs, and ordersPerSec as a fraction of it.
func (b *busRuns) bound(ordersPerSec float64) {
	if b.MessagesPerOrder == 0 {
		return
	}
	b.OrdersBound = max(b.BatchRate, b.SingleRate) / float64(b.MessagesPerOrder)
	if b.OrdersBound > 0 {
		b.OrdersOfBound = ordersPerSec / b.OrdersBound
	}
}
