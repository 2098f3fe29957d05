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
