package web

import (
	"strconv"
	"time"

	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/telemetry"
)

// TraceView is the trace of an order as the admin site shows it: its id, a link to the
// tracing UI (when TRACE_UI_URL is set), and the spans this process keeps of it
// (telemetry.Trace) as a timeline.
type TraceView struct {
	ID    string // "" when the order's events carry no trace (written untraced, or before tracing)
	URL   string // "" without a tracing UI
	Spans []SpanBar
	Total string // the timeline's length, e.g. "12.3 ms"
}

// SpanBar is one span of a timeline: where its bar starts and how long it is, in percent
// of the timeline (at least 0.5, so that a short span still shows).
type SpanBar struct {
	Name, Component, Offset, Duration string // Offset and Duration in words, "1.2 ms"
	Depth                             int
	X, Width                          string // percent, for the SVG bar
	Failed                            bool
}

// TraceIDOf returns the trace id of the first of events that carries one, "".
func TraceIDOf(events []event.Stored) string {
	for _, e := range events {
		if id := e.Metadata.TraceID; id != "" {
			return id
		}
		if id := telemetry.TraceIDOf(e.Metadata.TraceParent); id != "" {
			return id
		}
	}
	return ""
}

// NewTraceView returns the view of trace traceID ("" for none) with the spans this
// process keeps of it, earliest first, indented under their parents.
func NewTraceView(traceID string) TraceView {
	v := TraceView{ID: traceID, URL: telemetry.TraceURL(traceID)}
	if traceID == "" {
		return v
	}
	spans := telemetry.Trace(traceID)
	if len(spans) == 0 {
		return v
	}
	start, end := spans[0].Start, spans[0].Start
	depth := map[string]int{}
	for _, s := range spans {
		end = maxTime(end, s.Start.Add(s.Duration))
	}
	total := end.Sub(start)
	v.Total = formatMillis(total)
	for _, s := range spans {
		d := 0
		if p, ok := depth[s.ParentID]; ok {
			d = p + 1
		}
		depth[s.SpanID] = d
		offset := s.Start.Sub(start)
		v.Spans = append(v.Spans, SpanBar{Name: s.Name, Component: s.Component, Depth: d,
			Offset: formatMillis(offset), Duration: formatMillis(s.Duration), Failed: s.Failed,
			X: percent(offset, total), Width: percent(max(s.Duration, total/200), total)})
	}
	return v
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// percent is part of whole in percent with one decimal, "0" for an empty whole.
func percent(part, whole time.Duration) string {
	if whole <= 0 {
		return "0"
	}
	return strconv.FormatFloat(min(100, 100*float64(part)/float64(whole)), 'f', 1, 64)
}

// formatMillis is d in milliseconds with one decimal: "12.3 ms".
func formatMillis(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + " ms"
}
