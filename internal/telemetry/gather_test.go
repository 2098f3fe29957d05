package telemetry_test

import (
	"context"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"

	"github.com/msdemo/msdemo/internal/telemetry"
)

// A process's /metrics, read over HTTP by Remote, holds what its registry holds (Local):
// the same families with the same values, histograms and their buckets included.
func TestRemoteReadsWhatLocalHolds(t *testing.T) {
	t.Parallel()
	m := telemetry.New()
	order := m.For("order")
	order.DecidesOrders()
	order.OrderDecided(telemetry.OutcomeApproved, time.Now().Add(-30*time.Millisecond))
	order.ObserveHTTP("/orders", 202, 3*time.Millisecond)
	order.Subscription(40, 2)
	order.DeadLettered("order.events")
	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)

	local, err := telemetry.Local(order).Gather(t.Context())
	if err != nil {
		t.Fatalf("local: %v", err)
	}
	remote := telemetry.Remote{URL: srv.URL + "/metrics"}
	if remote.Name() != srv.URL+"/metrics" {
		t.Errorf("Name: got %q, want the URL", remote.Name())
	}
	got, err := remote.Gather(t.Context())
	if err != nil {
		t.Fatalf("remote: %v", err)
	}
	byName := map[string]*dto.MetricFamily{}
	for _, mf := range got {
		byName[mf.GetName()] = mf
	}
	for _, want := range local {
		if !strings.HasPrefix(want.GetName(), "msdemo_") {
			continue // the runtime's own series move between the two gatherings
		}
		mf, ok := byName[want.GetName()]
		if !ok {
			t.Errorf("%s: missing from the remote source", want.GetName())
			continue
		}
		// The text format carries no created timestamps, and always writes the +Inf bucket,
		// which a registry leaves to SampleCount; compare without them.
		for _, f := range []*dto.MetricFamily{want, mf} {
			for _, m := range f.Metric {
				m.TimestampMs = nil
				if m.Counter != nil {
					m.Counter.CreatedTimestamp = nil
				}
				if h := m.Histogram; h != nil {
					h.CreatedTimestamp = nil
					h.Bucket = slices.DeleteFunc(h.Bucket, func(b *dto.Bucket) bool { return math.IsInf(b.GetUpperBound(), 1) })
				}
			}
		}
		if !proto.Equal(mf, want) {
			t.Errorf("%s: got %v, want %v", want.GetName(), mf, want)
		}
	}
	if telemetry.Local(nil) != nil {
		t.Error("Local(nil): got a source, want nil (metrics off)")
	}
}

// A source that is not a /metrics is an error that names it.
func TestRemoteErrors(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("/html", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte("<html></html>"))
	})
	mux.HandleFunc("/garbage", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		w.Write([]byte("msdemo_x{component=\"a\" 1\n"))
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/metrics"
	ln.Close()

	for _, tc := range []struct{ name, url, want string }{
		{"404", srv.URL + "/metrics", "404"},
		{"not the text format", srv.URL + "/html", "text/html"},
		{"unparsable", srv.URL + "/garbage", "parsing error"},
		{"nobody listening", closed, "connect"},
		{"too slow", srv.URL + "/slow", "deadline"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
			defer cancel()
			fams, err := telemetry.Remote{URL: tc.url}.Gather(ctx)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.url) {
				t.Errorf("got %d families and error %v, want an error naming %s and saying %q", len(fams), err, tc.url, tc.want)
			}
		})
	}
}
