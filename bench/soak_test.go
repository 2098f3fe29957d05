package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/msdemo/msdemo/internal/registry"
)

// TestSoak runs a short chaos soak: the shop as one process per component under load
// for 75 s while components are SIGKILLed (every one at least once: the event store and
// the gateway too) and the broker's connections dropped, then every check of the soak
// (soak_check.go). It never restarts the shared servers (-soak-servers is not given). It
// fails when a check fails: the soak returns an error and its report says which.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole shop for two minutes; skipped with -short")
	}
	var out, errs bytes.Buffer
	args := []string{"-soak", "75s", "-soak-fault-every", "2s", "-soak-customers", "6", "-json"}
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
