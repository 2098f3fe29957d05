package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/msdemo/msdemo/internal/event"
)

// A manager reading the event store through the gateway (the admin's explorer does) never
// sees a password hash, in a stream or in the feed; the services, reading the store
// directly, still get the hashes, so the customer service's rebuild keeps every login.
func TestPasswordHashesAreRedactedForPeople(t *testing.T) {
	s := startShop(t, 10*time.Second, nil)
	s.must(http.StatusCreated, http.MethodPost, "/customer/users", "", map[string]string{
		"username": "ada", "full_name": "Ada Lovelace", "email": "ada@example.com", "password": "analytical engine"}, nil)
	admin := s.login("admin", adminPassword)

	var stream struct {
		Events []event.Stored `json:"events"`
	}
	s.must(http.StatusOK, http.MethodGet, "/eventstore/streams/customer-ada", admin, nil, &stream)
	if len(stream.Events) == 0 {
		t.Fatal("customer-ada through the gateway: no events")
	}
	if data := string(stream.Events[0].Data); !strings.Contains(data, `"password_hash":"`+event.Redacted+`"`) {
		t.Errorf("customer-ada through the gateway: got %s, want password_hash %q", data, event.Redacted)
	}
	var feed struct {
		Events []event.Stored `json:"events"`
	}
	s.must(http.StatusOK, http.MethodGet, "/eventstore/events?limit=1000", admin, nil, &feed)
	for _, e := range feed.Events {
		if strings.Contains(string(e.Data), "$2a$") || strings.Contains(string(e.Data), "$2b$") {
			t.Errorf("the feed through the gateway shows a bcrypt hash in %s %d: %s", e.Type, e.Position, e.Data)
		}
	}

	resp, err := http.Get(s.urls["eventstore"] + "/streams/customer-ada")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var direct struct {
		Events []event.Stored `json:"events"`
	}
	if err := json.Unmarshal(body, &direct); err != nil || len(direct.Events) == 0 {
		t.Fatalf("customer-ada read directly: %s (%v)", body, err)
	}
	var registered struct {
		PasswordHash string `json:"password_hash"`
	}
	_ = json.Unmarshal(direct.Events[0].Data, &registered)
	if !strings.HasPrefix(registered.PasswordHash, "$2") {
		t.Errorf("customer-ada read directly, as a service does: password_hash %q, want the bcrypt hash", registered.PasswordHash)
	}
}
