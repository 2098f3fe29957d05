// Package eventclient is how a service uses the event store: Append sends an append request
// over RabbitMQ (the wire contract in docs/eventstore.md), Feed reads the global feed over
// HTTP, and Subscribe keeps a read model up to date (subscribe.go).
package eventclient

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/msdemo/msdemo/internal/bus"
	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/telemetry"
)

// Client talks to one event store. It is safe for concurrent use.
type Client struct {
	bus *bus.Conn
	// baseURLs are the HTTP APIs of the event store's processes, e.g.
	// http://127.0.0.1:6005; reads go to the one at current until it cannot be reached.
	baseURLs    []string
	current     atomic.Int64
	http        *http.Client
	appendQueue string
	exchange    string
	batcher     appendBatcher
	metrics     *telemetry.Component
}

// An Option configures New.
type Option func(*Client)

// WithMetrics records the client's subscriptions in m (msdemo_subscription_position and
// msdemo_subscription_lag_events); m may be nil.
func WithMetrics(m *telemetry.Component) Option {
	return func(c *Client) { c.metrics = m }
}

// New returns a client that appends over conn and reads from the event store at baseURL,
// a URL or a comma-separated list of the URLs of several event store processes that
// share one store (any of them answers reads). appendQueue and exchange may be empty for
// the contract's names.
func New(conn *bus.Conn, baseURL, appendQueue, exchange string, opts ...Option) *Client {
	if appendQueue == "" {
		appendQueue = event.AppendQueue
	}
	if exchange == "" {
		exchange = event.Exchange
	}
	c := &Client{bus: conn, appendQueue: appendQueue, exchange: exchange, http: &http.Client{Timeout: 30 * time.Second}}
	for u := range strings.SplitSeq(baseURL, ",") {
		c.baseURLs = append(c.baseURLs, strings.TrimRight(strings.TrimSpace(u), "/"))
	}
	for _, opt := range opts {
		opt(c)
	}
	c.http.Transport = telemetry.TraceTransport(cmp.Or(c.metrics.Name(), "eventclient"), nil)
	return c
}

// Append sends req and returns the store's reply. Appends made at the same time share bus
// messages (batch.go). An "unavailable" reply is retried with
// backoff until ctx is done, which is safe because the store deduplicates by event id. The
// error is non-nil only when no reply came (ctx done, or the bus closed).
//
// When ctx carries a span, the append is a span of its own ("append <stream>"), and each
// event without a traceparent in its metadata gets that span's (and its trace id), so
// that whoever consumes the event continues the trace (docs/tracing.md). req's events
// are not changed: the metadata is set on a copy.
func (c *Client) Append(ctx context.Context, req event.AppendRequest) (reply event.AppendReply, err error) {
	if trace.SpanContextFromContext(ctx).IsValid() {
		var span trace.Span
		ctx, span = telemetry.Tracer().Start(ctx, "append "+req.Stream, trace.WithSpanKind(trace.SpanKindProducer),
			trace.WithAttributes(telemetry.ComponentKey.String(cmp.Or(c.metrics.Name(), "eventclient")),
				attribute.String("msdemo.stream", req.Stream), attribute.Int("msdemo.events", len(req.Events))))
		defer func() { telemetry.EndSpan(span, err) }()
		req.Events = withTraceParent(ctx, req.Events)
	}
	body, err := json.Marshal(req)
	if err != nil {
		return event.AppendReply{}, fmt.Errorf("encode append request: %w", err)
	}
	pauses := bus.NewBackoff(50*time.Millisecond, 2*time.Second)
	for {
		raw, err := c.send(ctx, body)
		if err != nil {
			return event.AppendReply{}, fmt.Errorf("append to %s: %w", req.Stream, err)
		}
		var reply event.AppendReply
		if err := json.Unmarshal(raw, &reply); err != nil {
			return event.AppendReply{}, fmt.Errorf("decode append reply: %w", err)
		}
		if reply.Error != event.ErrUnavailable {
			return reply, nil
		}
		select {
		case <-ctx.Done():
			return reply, nil
		case <-time.After(pauses.NextBackOff()):
		}
	}
}

// withTraceParent returns events with ctx's traceparent and trace id in the metadata of
// those that have none, on a copy when any has none.
func withTraceParent(ctx context.Context, events []event.New) []event.New {
	parent := telemetry.TraceParent(ctx)
	if parent == "" {
		return events
	}
	traceID := trace.SpanContextFromContext(ctx).TraceID().String()
	events = slices.Clone(events)
	for i := range events {
		if events[i].Metadata.TraceParent == "" {
			events[i].Metadata.TraceParent, events[i].Metadata.TraceID = parent, traceID
		}
	}
	return events
}

// decisionTimeout bounds AppendDecision's wait for the store.
const decisionTimeout = 10 * time.Second

// AppendDecision appends d, a decision its caller made on stream at version expected
// because of the event cause (nil: of none, e.g. a timeout), as the one event of a
// request, waiting at most 10 s, and returns it as stored. d's metadata is cause's
// correlation id, with cause as its causation, in cause's trace when ctx has none. It returns nil, and no error, when the
// stream has moved on (wrong expected version) or d was stored before (duplicate): the
// stream then holds the truth, and the caller reads it and decides again. The stored
// event's RecordedAt is the time of the reply, standing for the store's until the event
// comes back from the bus.
func (c *Client) AppendDecision(ctx context.Context, stream string, expected int64, d event.New, cause *event.Stored) (*event.Stored, error) {
	if cause != nil {
		d.Metadata = event.Metadata{CorrelationID: cause.Metadata.CorrelationID, CausationID: cause.ID}
		if !trace.SpanContextFromContext(ctx).IsValid() { // continue cause's trace: Append's span is its child
			ctx = telemetry.WithTraceParent(ctx, cause.Metadata.TraceParent)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, decisionTimeout)
	defer cancel()
	reply, err := c.Append(ctx, event.AppendRequest{Stream: stream, ExpectedVersion: &expected, Events: []event.New{d}})
	switch {
	case err != nil:
		return nil, fmt.Errorf("append %s to %s: %w", d.Type, stream, err)
	case reply.Error == event.ErrWrongExpectedVersion || reply.Duplicate:
		return nil, nil
	case !reply.OK:
		return nil, fmt.Errorf("append %s to %s: %s %s", d.Type, stream, reply.Error, reply.Message)
	}
	return &event.Stored{ID: d.ID, Stream: stream, Version: reply.FirstVersion, Position: reply.FirstPosition,
		Type: d.Type, Data: d.Data, Metadata: d.Metadata, RecordedAt: time.Now().UTC().Truncate(time.Millisecond)}, nil
}

// ErrStale is what a decision returns to DecideOnStream when the read model it decided on
// is behind its stream in the store (its append was refused as AppendDecision says).
var ErrStale = errors.New("the stream has moved on")

// maxStaleTries bounds how often DecideOnStream catches up a stream that keeps moving.
const maxStaleTries = 5

// DecideOnStream runs decide, and, each time it returns ErrStale, reads stream from the
// store, hands its events to catchUp (which applies what the read model lacks) and runs
// decide again, at most five times. It is the loop of a saga participant whose decision
// raced another writer of the stream (a manager, another replica).
func (c *Client) DecideOnStream(ctx context.Context, stream string, decide func() error, catchUp func([]event.Stored) error) error {
	for try := 1; ; try++ {
		err := decide()
		switch {
		case !errors.Is(err, ErrStale):
			return err
		case try == maxStaleTries:
			return fmt.Errorf("%s kept moving (%d tries): %w", stream, try, err)
		}
		events, _, err := c.Stream(ctx, stream)
		if err != nil {
			return fmt.Errorf("catch up %s: %w", stream, err)
		}
		if err := catchUp(events); err != nil {
			return fmt.Errorf("catch up %s: %w", stream, err)
		}
	}
}

// FeedPage is a page of the global feed (GET /events).
type FeedPage struct {
	StoreID   string         `json:"store_id"`
	Events    []event.Stored `json:"events"`
	NextAfter int64          `json:"next_after"`
	Head      int64          `json:"head"`
}

// Feed reads up to limit events after position after whose types match one of types
// ("order.placed" or "order.*"; none = all).
func (c *Client) Feed(ctx context.Context, after int64, limit int, types []string) (FeedPage, error) {
	q := url.Values{"after": {strconv.FormatInt(after, 10)}, "limit": {strconv.Itoa(limit)}}
	if len(types) > 0 {
		q.Set("types", strings.Join(types, ","))
	}
	var page FeedPage
	resp, err := c.get(ctx, "/events?"+q.Encode())
	if err != nil {
		return page, fmt.Errorf("read event feed: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return page, fmt.Errorf("read event feed: %s answered %s", resp.Request.URL.Host, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		return page, fmt.Errorf("decode event feed: %w", err)
	}
	return page, nil
}

// Stream reads every event of stream (GET /streams/{stream}); found is false when the
// stream does not exist. A service uses it to catch up one aggregate at once, e.g. after
// a version conflict, when the events it lacks are still behind others in its queue.
func (c *Client) Stream(ctx context.Context, stream string) (events []event.Stored, found bool, err error) {
	resp, err := c.get(ctx, "/streams/"+url.PathEscape(stream))
	if err != nil {
		return nil, false, fmt.Errorf("read stream %s: %w", stream, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return nil, false, nil
	default:
		return nil, false, fmt.Errorf("read stream %s: %s answered %s", stream, resp.Request.URL.Host, resp.Status)
	}
	var body struct {
		Events []event.Stored `json:"events"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, false, fmt.Errorf("decode stream %s: %w", stream, err)
	}
	return body.Events, true, nil
}

// get sends a GET for path to the current event store process; when that one cannot be
// reached (nothing was answered), it tries the others in turn, and the first that answers
// becomes the current one.
func (c *Client) get(ctx context.Context, path string) (*http.Response, error) {
	first := int(c.current.Load())
	var errs []error
	for i := range c.baseURLs {
		n := (first + i) % len(c.baseURLs)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.baseURLs[n]+path, nil)
		if err != nil {
			return nil, err
		}
		resp, err := c.http.Do(req)
		if err == nil {
			c.current.Store(int64(n))
			return resp, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("no event store answered (EVENTSTORE_URL=%s): %w", strings.Join(c.baseURLs, ","), errors.Join(errs...))
}
