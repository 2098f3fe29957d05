// Package view is the wire contract of view announcements: a service that serves a view
// the sites show live (an order with its timeline) says on the bus that an item of it has
// changed, once the change is readable through its API. Each site instance then reads the
// item once and pushes it to every browser that follows it (internal/web's Follower),
// instead of every browser polling. It is pure data, like package event; docs/eventstore.md
// ("View announcements") describes the same contract for other languages.
package view

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Exchange is the durable topic exchange of the shop's view announcements, beside
// event.Exchange ("msdemo.events").
const Exchange = "msdemo.views"

// MessageType is the AMQP type of every announcement.
const MessageType = "view.changed"

// Orders is the view of the order service: GET /order/orders/{id} and the lists of
// GET /order/orders.
const Orders = "order"

// ExchangeFor returns the view exchange that goes with the event exchange events: its name
// with the suffix ".events" replaced by ".views" (appended when it has none). So
// "msdemo.events" gives Exchange, and a test's own "<name>.events" gives "<name>.views":
// a service and a site configured with the same event exchange meet on the same view
// exchange, and tests that run beside each other do not see each other's announcements.
func ExchangeFor(events string) string {
	return strings.TrimSuffix(events, ".events") + ".views"
}

// Change is one announcement, published to the view exchange with the view's name as
// routing key, as persistent JSON. Either it names one item (ID, with Owner where the item
// has one), or All says that every item of the view may have changed without an
// announcement: the service started, so a change it committed just before it stopped may
// not have been announced. A receiver that shows something of View reads it again.
//
// A change is announced at least once, after it is readable; several changes of one item
// may come as one announcement (the latest), and an announcement may come twice.
type Change struct {
	View string `json:"view"`
	// ID is the item that changed, e.g. an order id.
	ID string `json:"id,omitempty"`
	// Owner is the user whose item it is (an order's customer), so that a site sends it
	// only to that user's browsers and the managers'; empty for an item nobody owns.
	Owner string `json:"owner,omitempty"`
	// Version is the item's version after the change, where it has one (an order's
	// stream version; a saga step of another stream changes the timeline, not the
	// version), and Position the global position of the last event the change applied.
	// Both are for logs and for receivers that skip what they have shown already.
	Version  int64 `json:"version,omitempty"`
	Position int64 `json:"position,omitempty"`
	// Created says the change created the item (an order placed): a list shows it as a
	// new row.
	Created bool `json:"created,omitempty"`
	// All: every item of View may have changed; ID and the rest are empty.
	All bool `json:"all,omitempty"`
}

// Parse decodes an announcement and checks it: a view, and an id unless All.
func Parse(body []byte) (Change, error) {
	var c Change
	if err := json.Unmarshal(body, &c); err != nil {
		return Change{}, fmt.Errorf("view announcement: %w", err)
	}
	switch {
	case c.View == "":
		return Change{}, errors.New("view announcement: view is empty")
	case c.ID == "" && !c.All:
		return Change{}, errors.New("view announcement: id is empty and all is not set")
	}
	return c, nil
}

// Merge returns the announcement of both c and later, two changes of one item: later's
// version and position, created if either created it.
func (c Change) Merge(later Change) Change {
	later.Created = later.Created || c.Created
	later.Version = max(later.Version, c.Version)
	later.Position = max(later.Position, c.Position)
	if later.Owner == "" {
		later.Owner = c.Owner
	}
	return later
}
