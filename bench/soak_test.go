package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/registry"
)

// TestSoak runs a short chaos soak: the shop as one process per component under load
// for 100 s while components are SIGKILLed (every one at least once: the event store and
// the gateway too) and the broker's connections dropped, then every check of the soak
// (soak_check.go). It never restarts the shared servers (-soak-servers is not given). It
// fails when a check fails: the soak returns an error and its report says which.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole shop for two minutes; skipped with -short")
	}
	var out, errs bytes.Buffer
	args := []string{"-soak", "100s", "-soak-fault-every", "2s", "-soak-customers", "6", "-json"}
	err := run(t.Context(), args, os.Getenv, &out, &errs)
	var r soakReport
	if jerr := json.Unmarshal(out.Bytes(), &r); jerr != nil {
		t.Fatalf("bench %s: %v; its output is no report (%v):\n%s\n%s", strings.Join(args, " "), err, jerr, out.String(), tail(errs.String(), 5000))
	}
	for _, c := range r.Checks {
		t.Logf("%-5v %s: %s", c.OK, c.Name, c.Detail)
	}
	if err != nil {
		t.Fatalf("bench %s: %v\n%s", strings.Join(args, " "), err, tail(errs.String(), 5000))
	}
	if len(r.Checks) < 10 {
		t.Errorf("got %d checks, want the 13 of soak.go", len(r.Checks))
	}
	for _, c := range registry.Components() {
		if r.Faults["kill:"+c.Name] == 0 {
			t.Errorf("%s was never killed; faults %v", c.Name, r.Faults)
		}
	}
	if r.Operations["order"] == 0 || r.Operations["register"] == 0 || r.Operations["credit edit"] == 0 {
		t.Errorf("the load did not order, register and edit credit: %v", r.Operations)
	}
}

// TestBalance: the replay behind "no oversell" and "no overspend" finds a stock below zero
// and a release of what was never reserved, and adds up a clean stream.
func TestBalance(t *testing.T) {
	ev := func(v int64, typ, data string) event.Stored {
		return event.Stored{Stream: "product-p1", Version: v, Type: typ, Data: json.RawMessage(data)}
	}
	set := map[string]string{event.ProductAdded: "units_in_stock", event.ProductUpdated: "units_in_stock"}
	for _, tc := range []struct {
		name     string
		events   []event.Stored
		want     int64
		problems int
	}{
		{"reserve, release, restock", []event.Stored{
			ev(1, event.ProductAdded, `{"units_in_stock":3}`),
			ev(2, event.ProductStockReserved, `{"order_id":"o1","quantity":2}`),
			ev(3, event.ProductStockReserved, `{"order_id":"o2","quantity":1}`),
			ev(4, event.ProductStockReleased, `{"order_id":"o1"}`),
			ev(5, event.ProductUpdated, `{"units_in_stock":10}`),
		}, 10, 0},
		{"oversold", []event.Stored{
			ev(1, event.ProductAdded, `{"units_in_stock":1}`),
			ev(2, event.ProductStockReserved, `{"order_id":"o1","quantity":1}`),
			ev(3, event.ProductStockReserved, `{"order_id":"o2","quantity":1}`),
		}, -1, 1},
		{"released twice", []event.Stored{
			ev(1, event.ProductAdded, `{"units_in_stock":1}`),
			ev(2, event.ProductStockReserved, `{"order_id":"o1","quantity":1}`),
			ev(3, event.ProductStockReleased, `{"order_id":"o1"}`),
			ev(4, event.ProductStockReleased, `{"order_id":"o1"}`),
		}, 1, 1},
	} {
		got, problems := balance(tc.events, set, event.ProductStockReserved, event.ProductStockReleased, "quantity")
		if got != tc.want || len(problems) != tc.problems {
			t.Errorf("%s: got %d with problems %q, want %d with %d problems", tc.name, got, problems, tc.want, tc.problems)
		}
	}
}

// TestFailureStatus: 500 and the refusals of valid requests fail the soak; the answers of
// a component down do not.
func TestFailureStatus(t *testing.T) {
	for code, want := range map[int]bool{500: true, 501: true, 400: true, 422: true, 429: true,
		502: false, 503: false, 504: false, 0: false, 401: false, 404: false, 409: false, 200: false} {
		if got := failureStatus(code); got != want {
			t.Errorf("failureStatus(%d) = %v, want %v", code, got, want)
		}
	}
}
