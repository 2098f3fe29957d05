package service

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

type profile struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name, body, contentType string
		wantField               string // "" means no error
	}{
		{"valid", `{"name": "a", "count": 1}`, "application/json", ""},
		{"no content type", `{"name": "a"}`, "", ""},
		{"curl -d", `{"name": "a"}`, "application/x-www-form-urlencoded", ""},
		{"form", `name=a`, "application/x-www-form-urlencoded", "body"},
		{"empty", ``, "application/json", "body"},
		{"not JSON", `{"name": `, "application/json", "body"},
		{"wrong type", `{"count": "1"}`, "application/json", "count"},
		{"float for int", `{"count": 1.5}`, "application/json", "count"},
		{"unknown field", `{"nmae": "a"}`, "application/json", "nmae"},
		{"trailing data", `{"name": "a"} {}`, "application/json", "body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tt.body))
			if tt.contentType != "" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			var p profile
			err := Decode(r, &p)
			var fields FieldErrors
			switch {
			case tt.wantField == "" && err != nil:
				t.Fatalf("got error %v, want none", err)
			case tt.wantField != "" && !errors.As(err, &fields):
				t.Fatalf("got error %v, want FieldErrors", err)
			case tt.wantField != "" && fields[tt.wantField] == "":
				t.Fatalf("got fields %v, want one for %q", fields, tt.wantField)
			}
		})
	}
}

type audit struct {
	By string `json:"by"`
}

type strictDate string

func (d *strictDate) UnmarshalJSON(b []byte) error {
	if string(b) != "null" && string(b) != `"2026-12-04"` {
		return errors.New("not the day")
	}
	return nil
}

type order struct {
	audit           // embedded: "by" is a field of order
	Quantity int    `json:"quantity"`
	Secret   string `json:"-"`
	Note     struct {
		Text string `json:"text"`
	} `json:"note"`
	Day strictDate `json:"day"`
}

// Decode finds unknown fields by encoding/json's own rules: tags, case folding, embedded
// structs and "-" fields; other failures are not mistaken for them.
func TestDecodeNamesTheUnknownField(t *testing.T) {
	tests := []struct {
		name, body string
		wantField  string // "" means no error
	}{
		{"known", `{"quantity": 1, "by": "ann", "note": {"text": "hi"}, "day": "2026-12-04"}`, ""},
		{"case folded", `{"QUANTITY": 1, "By": "ann"}`, ""},
		{"unknown after known", `{"quantity": 1, "colour": "red"}`, "colour"},
		{"first of two unknown", `{"size": 1, "colour": "red"}`, "size"},
		{"dash field", `{"secret": "x"}`, "secret"},
		{"escaped name", `{"col\u006fur": "red"}`, "colour"},
		{"unknown nested", `{"note": {"txt": "hi"}}`, "body"},
		{"unmarshaler error", `{"day": "monday"}`, "body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o order
			err := Decode(httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tt.body)), &o)
			var fields FieldErrors
			switch {
			case tt.wantField == "" && err != nil:
				t.Fatalf("got error %v, want none", err)
			case tt.wantField == "":
			case !errors.As(err, &fields) || len(fields) != 1 || fields[tt.wantField] == "":
				t.Fatalf("got error %#v, want one FieldError for %q", err, tt.wantField)
			}
		})
	}
}

func TestDecodeTooLarge(t *testing.T) {
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"name": "`+strings.Repeat("a", 100)+`"}`))
	r.Body = http.MaxBytesReader(w, r.Body, 10)
	var p profile
	var tooLarge *http.MaxBytesError
	if err := Decode(r, &p); !errors.As(err, &tooLarge) {
		t.Fatalf("got error %v, want *http.MaxBytesError", err)
	}
}
