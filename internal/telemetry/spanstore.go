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
// 30 spans an order, the last two thousand orders' (6 MB). Older ones are overwritten.
const RecentSpans = 65536

// spanStore is a span processor that keeps the last spans that ended in a ring, each as
// the few fields Trace shows (not the SDK's snapshot, which holds every attribute and
// would keep a tenth as many in the same memory). OnEnd copies them under a lock,
// without allocating; Trace pays for the search.
type spanStore struct {
	mu    sync.Mutex
	spans []storedSpan // len RecentSpans once full
	next  int          // where the next span goes once full
}

// storedSpan is what the store keeps of a span.
type storedSpan struct {
	traceID  trace.TraceID
	span     Span
	parentID trace.SpanID
	spanID   trace.SpanID
}

var _ sdktrace.SpanProcessor = (*spanStore)(nil)

// recent is the process's store: every TracerProvider StartTracing makes records into it,
// so that it outlives them (tests start several).
var recent = &spanStore{}

func (s *spanStore) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

func (s *spanStore) OnEnd(sp sdktrace.ReadOnlySpan) {
	kept := storedSpan{traceID: sp.SpanContext().TraceID(), spanID: sp.SpanContext().SpanID(),
		parentID: sp.Parent().SpanID(), span: Span{Name: sp.Name(), Start: sp.StartTime(),
			Duration: sp.EndTime().Sub(sp.StartTime()), Failed: sp.Status().Code == codes.Error}}
	for _, kv := range sp.Attributes() {
		if kv.Key == ComponentKey {
			kept.span.Component = kv.Value.AsString()
			break
		}
	}
	if kept.span.Component == "" {
		if v, ok := sp.Resource().Set().Value("service.name"); ok {
			kept.span.Component = v.AsString()
		}
	}
	s.mu.Lock()
	if len(s.spans) < RecentSpans {
		s.spans = append(s.spans, kept)
	} else {
		s.spans[s.next] = kept
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
	var spans []Span
	recent.mu.Lock()
	for i := range recent.spans {
		if kept := &recent.spans[i]; kept.traceID == id {
			s := kept.span
			s.SpanID = kept.spanID.String()
			if kept.parentID.IsValid() {
				s.ParentID = kept.parentID.String()
			}
			spans = append(spans, s)
		}
	}
	recent.mu.Unlock()
	slices.SortStableFunc(spans, func(a, b Span) int { return a.Start.Compare(b.Start) })
	return spans
}
