package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// TestSmoke runs the whole benchmark with tiny durations and checks that the report has
// every row; it judges no figure (performance is the command's to report, not a test's).
// It starts the whole shop twice (about 40 s), so -short skips it.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole shop; skipped with -short")
	}
	var out, errs bytes.Buffer
	args := []string{"-duration", "2s", "-customers", "4", "-conns", "8", "-history", "1000,3000"}
	if err := run(t.Context(), args, os.Getenv, &out, &errs); err != nil {
		t.Fatalf("bench %s: %v\n%s", strings.Join(args, " "), err, errs.String())
	}
	table := out.String()
	for _, want := range []string{"orders/s at saturation", "placed->approved at", "via gateway",
		"via product service directly", "via nginx", "appends over RabbitMQ, 1 writer",
		"appends over RabbitMQ, 16 writers", "appends over RabbitMQ, 64 writers", "raw insertOne", "PublishBatch(100)", "Publish x64",
		"broker messages per order", "bus bound", "admin SSE client", "msdemo RSS",
		"live order list, 1 SSE clients", "live order list, 100 SSE clients",
		"with 1000 events seeded", "with 3000 events seeded"} {
		if !strings.Contains(table, want) {
			t.Errorf("table has no row %q; got:\n%s", want, table)
		}
	}

	out.Reset()
	if err := run(t.Context(), append(args, "-json"), os.Getenv, &out, &errs); err != nil {
		t.Fatalf("bench -json: %v\n%s", err, errs.String())
	}
	var r report
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("decode -json output: %v\n%s", err, out.String())
	}
	if r.Saturation.Completed == 0 || r.Latency.Placed == 0 || r.HTTP.Gateway.RPS == 0 || r.Store.Append16 == 0 || r.Bus.BatchRate == 0 {
		t.Errorf("got a report with empty figures: %+v", r)
	}
}
