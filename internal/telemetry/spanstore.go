package telemetry

import (
	"context"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// RecentSpans is how many ended spans the process keeps in memory for Trace: at about
// 40 spans an order, the last few hundred orders'. Older ones are overwritten.
const RecentSpans = 16384

// spanStore is a span processor that keeps the last spans that ended in a ring. OnEnd
// only stores a pointer under a lock, so that recording costs next to nothing; Trace
// pays for the search.
type spanStore struct {
	mu    sync.Mutex
	spans []sdktrace.ReadOnlySpan // len RecentSpans once full
	next  int                     // where the next span goes once full
}

var _ sdktrace.SpanProcessor = (*spanStore)(nil)

// recent is the process's store: every TracerProvider StartTracing makes records into it,
// so that it outlives them (tests start several).
var recent = &spanStore{}

func (s *spanStore) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

func (s *spanStore) OnEnd(span sdktrace.ReadOnlySpan) {
	s.mu.Lock()
	if len(s.spans) < RecentSpans {
		s.spans = append(s.spans, span)
	} else {
		s.spans[s.next] = span
		s.next = (s.next + 1) % RecentSpans
	}
	s.mu.Unlock()
}

// Shutdown keeps the spans: the store is the process's, not one provider's.
func (s *spanStore) Shutdown(context.Context) error   { return nil }
func (s *spanStore) ForceFlush(context.Context) error { return nil }

// Span is one recorded span of a trace, as the admin site's timeline shows it.
type Span struct {
	Name      string
	Component string // the ComponentKey attribute, else the resource's service.name
	SpanID    string
	ParentID  string // "" for the trace's root
	Start     time.Time
	Duration  time.Duration
	Failed    bool // its status is Error
}

// Trace returns the spans of trace traceID (32 hex digits) that this process recorded
// and still keeps, earliest start first; none for a malformed id, an unknown or
// forgotten trace, or with tracing off. In the all-in-one process that is every
// component's; a process that runs one component has only its own.
func Trace(traceID string) []Span {
	id, err := trace.TraceIDFromHex(traceID)
	if err != nil {
		return nil
	}
	recent.mu.Lock()
	var found []sdktrace.ReadOnlySpan
	for _, sp := range recent.spans {
		if sp.SpanContext().TraceID() == id {
			found = append(found, sp)
		}
	}
	recent.mu.Unlock()
	spans := make([]Span, 0, len(found))
	for _, sp := range found {
		s := Span{Name: sp.Name(), SpanID: sp.SpanContext().SpanID().String(), Start: sp.StartTime(),
			Duration: sp.EndTime().Sub(sp.StartTime()), Failed: sp.Status().Code == codes.Error}
		if sp.Parent().HasSpanID() {
			s.ParentID = sp.Parent().SpanID().String()
		}
		for _, kv := range sp.Attributes() {
			if kv.Key == ComponentKey {
				s.Component = kv.Value.AsString()
			}
		}
		if s.Component == "" {
			if v, ok := sp.Resource().Set().Value("service.name"); ok {
				s.Component = v.AsString()
			}
		}
		spans = append(spans, s)
	}
	slices.SortStableFunc(spans, func(a, b Span) int { return a.Start.Compare(b.Start) })
	return spans
}
