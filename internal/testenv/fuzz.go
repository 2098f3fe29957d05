package testenv

import (
	"errors"
	"testing"

	"github.com/msdemo/msdemo/internal/bus"
	"github.com/msdemo/msdemo/internal/event"
)

// eventData is a valid data of each of the shop's event types, as its writer appends it
// (internal/event/types.go).
var eventData = map[string]string{
	event.CustomerRegistered:      `{"username":"ann","full_name":"Ann Smith","email":"ann@example.com","password_hash":"$2a$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234","role":"customer","credit_cents":100000}`,
	event.CustomerProfileUpdated:  `{"full_name":"Ann Jones","email":"ann.jones@example.com"}`,
	event.CustomerPasswordChanged: `{"password_hash":"$2a$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234"}`,
	event.CustomerCreditSet:       `{"credit_cents":50000}`,
	event.CustomerCreditReserved:  `{"order_id":"abcdefgh2345","amount_cents":3600}`,
	event.CustomerCreditRejected:  `{"order_id":"abcdefgh2345","amount_cents":0,"reason":"not enough credit"}`,
	event.CustomerCreditReleased:  `{"order_id":"abcdefgh2345","amount_cents":3600}`,
	event.CategoryAdded:           `{"id":"bevbevbev2","name":"Beverages"}`,
	event.CategoryRenamed:         `{"name":"Drinks"}`,
	event.CategoryDeleted:         `{}`,
	event.ProductAdded:            `{"id":"chaichai22","name":"Chai","description":"Black tea","supplier":"Exotic Liquids","category_id":"bevbevbev2","price_cents":1800,"units_in_stock":39}`,
	event.ProductUpdated:          `{"name":"Chai","description":"Black tea","supplier":"Exotic Liquids","category_id":"bevbevbev2","price_cents":1900,"units_in_stock":40}`,
	event.ProductDeleted:          `{}`,
	event.ProductImageSet:         `{"image_id":"` + pictureID + `","thumb_id":"` + pictureID + `","width":1200,"height":900,"thumb_width":320,"thumb_height":240}`,
	event.ProductStockReserved:    `{"order_id":"abcdefgh2345","quantity":2}`,
	event.ProductStockRejected:    `{"order_id":"abcdefgh2345","reason":"out of stock"}`,
	event.ProductStockReleased:    `{"order_id":"abcdefgh2345","quantity":2}`,
	event.OrderPlaced:             `{"order_id":"abcdefgh2345","customer":"ann","product_id":"chaichai22","quantity":2,"unit_price_cents":1800,"total_cents":3600}`,
	event.OrderApproved:           `{"order_id":"abcdefgh2345","customer":"ann","product_id":"chaichai22","quantity":2,"unit_price_cents":1800,"total_cents":3600}`,
	event.OrderRejected:           `{"order_id":"abcdefgh2345","customer":"ann","reason":"out of stock"}`,
	event.InvoiceIssued:           `{"order_id":"abcdefgh2345","number":"2026-000001","customer":"ann","product_id":"chaichai22","quantity":2,"unit_price_cents":1800,"total_cents":3600,"issued_at":"2026-11-26T10:00:00.123Z"}`,
}

// pictureID is a picture id of the shape the product service gives them.
const pictureID = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

// AddEventSeeds adds to f, a fuzz target of a service's reading of the event types types,
// the inputs (index of a type in types, data) of a valid data of each type and of the same
// data made malformed in the ways that a reader must refuse: its fields of the wrong type,
// and data that is not an object. The target picks its type as EventType does. It fails f
// when one of types is not among subscribed, the types (or patterns) the service subscribes
// to, so that the target's list cannot drift from the service's.
func AddEventSeeds(f *testing.F, types, subscribed []string) {
	f.Helper()
	for i, typ := range types {
		if !event.TypeMatches(subscribed, typ) {
			f.Fatalf("AddEventSeeds: %s is not one of the subscribed types %v", typ, subscribed)
		}
		data, ok := eventData[typ]
		if !ok {
			f.Fatalf("AddEventSeeds: no data for %q", typ)
		}
		f.Add(uint8(i), []byte(data))
		f.Add(uint8(i), []byte(`{"order_id":7,"customer":[],"quantity":"2","price_cents":1.5,"credit_cents":"x","name":{}}`))
		f.Add(uint8(i), []byte(`[]`))
	}
}

// EventType is the type of types that a fuzz input's type index n names.
func EventType(types []string, n uint8) string { return types[int(n)%len(types)] }

// CheckDeadLettered fails t unless err, a read model's answer to an event, is nil or a
// permanent failure (bus.ErrPermanent), which the subscription dead-letters: an event
// whose data is malformed must never be tried again and again, since that holds up every
// event after it.
func CheckDeadLettered(t *testing.T, typ string, data []byte, err error) {
	t.Helper()
	if err != nil && !errors.Is(err, bus.ErrPermanent) {
		t.Fatalf("%s %q: got error %v, want none or a permanent one (bus.ErrPermanent)", typ, data, err)
	}
}

// CheckAppendable fails t unless the event store accepts e, a decision that a service
// took about input, as the one event of a request to stream.
func CheckAppendable(t *testing.T, input []byte, stream string, e event.New) {
	t.Helper()
	if err := (event.AppendRequest{Stream: stream, Events: []event.New{e}}).Validate(); err != nil {
		t.Fatalf("%q: decided %+v on %s, which the event store refuses: %v", input, e, stream, err)
	}
}
