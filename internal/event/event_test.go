package event

import (
	"errors"
	"strings"
	"testing"
)

func TestTypeMatches(t *testing.T) {
	tests := []struct {
		patterns []string
		typ      string
		want     bool
	}{
		{nil, "order.placed", true},
		{[]string{"order.placed"}, "order.placed", true},
		{[]string{"order.placed"}, "order.approved", false},
		{[]string{"order.*"}, "order.placed", true},
		{[]string{"order.*"}, "order.item.added", false},
		{[]string{"order.*"}, "orders.placed", false},
		{[]string{"order.#"}, "order.item.added", true},
		{[]string{"order.#"}, "order", true},
		{[]string{"#"}, "anything.at.all", true},
		{[]string{"*.placed"}, "order.placed", true},
		{[]string{"product.*", "order.placed"}, "order.placed", true},
		{[]string{"product.*", "order.placed"}, "customer.registered", false},
	}
	for _, tt := range tests {
		if got := TypeMatches(tt.patterns, tt.typ); got != tt.want {
			t.Errorf("TypeMatches(%q, %q) = %v, want %v", tt.patterns, tt.typ, got, tt.want)
		}
	}
}

func TestParseAppendRequest(t *testing.T) {
	valid := `{"stream": "product-1", "expected_version": 0, "events": [{"id": "e1", "type": "product.added", "data": {"n": 1}}]}`
	tests := []struct {
		name, body string
		wantErr    bool
	}{
		{"valid", valid, false},
		{"any version", `{"stream": "product-1", "events": [{"id": "e1", "type": "product.added"}]}`, false},
		{"null data", `{"stream": "product-1", "events": [{"id": "e1", "type": "product.added", "data": null}]}`, false},
		{"invalid JSON", `{"stream": `, true},
		{"trailing data", valid + ` {}`, true},
		{"empty stream", `{"stream": "", "events": [{"id": "e1", "type": "product.added"}]}`, true},
		{"stream with space", `{"stream": "product 1", "events": [{"id": "e1", "type": "product.added"}]}`, true},
		{"version as text", `{"stream": "product-1", "expected_version": "0", "events": [{"id": "e1", "type": "product.added"}]}`, true},
		{"negative version", `{"stream": "product-1", "expected_version": -2, "events": [{"id": "e1", "type": "product.added"}]}`, true},
		{"unknown field", `{"stream": "product-1", "expected": 0, "events": [{"id": "e1", "type": "product.added"}]}`, true},
		{"no events", `{"stream": "product-1", "events": []}`, true},
		{"empty type", `{"stream": "product-1", "events": [{"id": "e1", "type": ""}]}`, true},
		{"type of one word", `{"stream": "product-1", "events": [{"id": "e1", "type": "added"}]}`, true},
		{"data array", `{"stream": "product-1", "events": [{"id": "e1", "type": "product.added", "data": [1]}]}`, true},
		{"repeated id", `{"stream": "product-1", "events": [{"id": "e1", "type": "a.b"}, {"id": "e1", "type": "a.b"}]}`, true},
		{"traced", `{"stream": "product-1", "events": [{"id": "e1", "type": "a.b", "metadata": {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}]}`, false},
		{"trace id in capitals", `{"stream": "product-1", "events": [{"id": "e1", "type": "a.b", "metadata": {"trace_id": "4BF92F3577B34DA6A3CE929D0E0E4736"}}]}`, true},
		{"traceparent malformed", `{"stream": "product-1", "events": [{"id": "e1", "type": "a.b", "metadata": {"traceparent": "00-4bf92f35-00f067aa0ba902b7-01"}}]}`, true},
		{"trace id of another trace", `{"stream": "product-1", "events": [{"id": "e1", "type": "a.b", "metadata": {"trace_id": "00000000000000000000000000000001", "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}]}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseAppendRequest([]byte(tt.body))
			if (err != nil) != tt.wantErr {
				t.Fatalf("got error %v, want error: %v", err, tt.wantErr)
			}
			var invalid *InvalidError
			if err != nil && !errors.As(err, &invalid) {
				t.Fatalf("got %T, want *InvalidError", err)
			}
		})
	}
}

func TestParseAppendBatch(t *testing.T) {
	valid := `{"stream": "product-1", "events": [{"id": "e1", "type": "product.added"}]}`
	reqs, problems, err := ParseAppendBatch([]byte(" [" + valid + `, {"stream": ""}, ` + valid + "]"))
	if err != nil || len(reqs) != 3 || len(problems) != 3 {
		t.Fatalf("got %d requests, %d problems, %v; want 3 and 3", len(reqs), len(problems), err)
	}
	if problems[0] != nil || problems[1] == nil || problems[2] != nil || reqs[2].Stream != "product-1" {
		t.Errorf("got problems %v and requests %+v; want only the second refused", problems, reqs)
	}
	if !IsAppendBatch([]byte("\n [")) || IsAppendBatch([]byte(valid)) || IsAppendBatch(nil) {
		t.Error("IsAppendBatch: a batch is a JSON array, a request an object")
	}
	tooMany := "[" + strings.Repeat(valid+",", MaxAppendBatch) + valid + "]"
	for name, body := range map[string]string{"empty": "[]", "not JSON": "[{", "an object": valid, "too many": tooMany} {
		var invalid *InvalidError
		if _, _, err := ParseAppendBatch([]byte(body)); !errors.As(err, &invalid) {
			t.Errorf("%s: got %v, want an *InvalidError", name, err)
		}
	}
}
