package event

import "strings"

// This file is the shop's catalog of streams and event types: the one declaration of each
// name that services write and read, so that a writer and its readers cannot drift apart.
// A service keeps its own struct of what it reads of an event's data (a tolerant reader);
// the data each type carries is written here once. docs/eventstore.md points here.

// Aggregate is the kind of thing a stream holds the events of. A stream's name is
// "<aggregate>-<id>", and the types of its events are "<aggregate>.<past-tense-verb>".
type Aggregate string

// The shop's aggregates.
const (
	Customer Aggregate = "customer" // customer-<username>, written by the customer service
	Category Aggregate = "category" // category-<id>, written by the product service
	Product  Aggregate = "product"  // product-<id>, written by the product service
	Order    Aggregate = "order"    // order-<id>, written by the order service
	Cart     Aggregate = "cart"     // cart-<username>, written by the order service
	Invoice  Aggregate = "invoice"  // invoice-<order id>, written by the accounting service
)

// Stream returns the name of the stream of the aggregate a with id: "<a>-<id>".
func (a Aggregate) Stream(id string) string { return string(a) + "-" + id }

// ID returns the id of stream when it is a stream of a ("order-42" is order 42); ok is
// false for another aggregate's stream or an empty id.
func (a Aggregate) ID(stream string) (id string, ok bool) {
	id, ok = strings.CutPrefix(stream, string(a)+"-")
	return id, ok && id != ""
}

// Types returns the topic pattern that matches every event type of a's streams, such as
// "order.*", for a subscription or a binding (TypeMatches).
func (a Aggregate) Types() string { return string(a) + ".*" }

// Event types of a customer's stream, customer-<username>. The customer service writes
// them all; it reads them back into its read model.
const (
	// CustomerRegistered: {username, full_name, email, password_hash, role, credit_cents}.
	// password_hash is a bcrypt hash; a password itself never goes into an event.
	CustomerRegistered = "customer.registered"
	// CustomerProfileUpdated: {full_name, email}.
	CustomerProfileUpdated = "customer.profile-updated"
	// CustomerPasswordChanged: {password_hash}.
	CustomerPasswordChanged = "customer.password-changed"
	// CustomerCreditSet: {credit_cents}, the credit a manager set.
	CustomerCreditSet = "customer.credit-set"
	// CustomerCreditReserved: {order_id, amount_cents}, the order saga's reservation: the
	// credit is taken at once. The order service reads it.
	CustomerCreditReserved = "customer.credit-reserved"
	// CustomerCreditRejected: {order_id, amount_cents (0), reason} ("not enough credit").
	// The order service reads it and rejects the order.
	CustomerCreditRejected = "customer.credit-rejected"
	// CustomerCreditReleased: {order_id, amount_cents}, the credit of a rejected order
	// given back. The order service records it on the order's timeline.
	CustomerCreditReleased = "customer.credit-released"
)

// Event types of a category's stream, category-<id>. The product service writes and reads
// them.
const (
	// CategoryAdded: {id, name}.
	CategoryAdded = "category.added"
	// CategoryRenamed: {name}.
	CategoryRenamed = "category.renamed"
	// CategoryDeleted: {}. A category with products is not deleted.
	CategoryDeleted = "category.deleted"
)

// Event types of a product's stream, product-<id>. The product service writes them all.
const (
	// ProductAdded: {id, name, description, supplier, category_id, price_cents,
	// units_in_stock}. The order service reads the price.
	ProductAdded = "product.added"
	// ProductUpdated: {name, description, supplier, category_id, price_cents,
	// units_in_stock}, all the editable fields at once. The order service reads the price.
	ProductUpdated = "product.updated"
	// ProductDeleted: {}. The order service rejects orders of a deleted product.
	ProductDeleted = "product.deleted"
	// ProductImageSet: {image_id, thumb_id, width, height, thumb_width, thumb_height},
	// the product's picture, replacing any before it: the ids (hex SHA-256 of the bytes)
	// and sizes in pixels of its large picture and its thumbnail. The bytes are not in
	// the event: the product service keeps them in its PostgreSQL database and serves
	// them at GET /product/images/{id}.
	ProductImageSet = "product.image-set"
	// ProductStockReserved: {order_id, quantity}, the order saga's reservation of one
	// line of an order: the units are taken at once. The order service reads it (the
	// stream says which product, so which line).
	ProductStockReserved = "product.stock-reserved"
	// ProductStockRejected: {order_id, reason} ("out of stock", "product deleted", "price
	// changed") of one line. The order service reads it and rejects the order.
	ProductStockRejected = "product.stock-rejected"
	// ProductStockReleased: {order_id, quantity}, the units of a line of a rejected order
	// given back. The order service records it on the order's timeline.
	ProductStockReleased = "product.stock-released"
)

// Event types of an order's stream, order-<id>. The order service writes them (it
// orchestrates the saga) and reads them back into its read model.
const (
	// OrderPlaced: {order_id, customer, lines: [{product_id, name, quantity,
	// unit_price_cents}, ...], total_cents}, one line per product (OrderLines). The
	// product service reads it and reserves each line's stock, the customer service
	// reserves the credit of the total.
	OrderPlaced = "order.placed"
	// OrderApproved: the data of OrderPlaced, repeated so that accounting invoices from
	// it alone. Accounting reads it.
	OrderApproved = "order.approved"
	// OrderRejected: {order_id, customer, reason}. The product and customer services read
	// it and release what they hold for the order.
	OrderRejected = "order.rejected"
)

// Event types of a customer's cart, cart-<username>. The order service writes them and
// reads them back into its read model; checking out places an order of the cart's lines.
const (
	// CartLineSet: {product_id, quantity}, the product is in the cart with that quantity
	// (added, or its quantity changed).
	CartLineSet = "cart.line-set"
	// CartLineRemoved: {product_id}.
	CartLineRemoved = "cart.line-removed"
	// CartCheckedOut: {order_id, lines: [{product_id, name, quantity, unit_price_cents},
	// ...]}, the cart was checked out: the order of these lines is placed (the order
	// service places it from this event if the request did not), and the cart is empty.
	// It is appended at the version of the cart whose lines it holds.
	CartCheckedOut = "cart.checked-out"
)

// OrderLine is a line of an order, as OrderPlaced, OrderApproved and InvoiceIssued carry
// it: a product (its name when ordered), how many and at what unit price.
type OrderLine struct {
	ProductID      string `json:"product_id"`
	Name           string `json:"name,omitempty"`
	Quantity       int64  `json:"quantity"`
	UnitPriceCents int64  `json:"unit_price_cents"`
}

// TotalCents is the line's price: quantity times unit price.
func (l OrderLine) TotalCents() int64 { return l.Quantity * l.UnitPriceCents }

// OrderLines is what a reader of OrderPlaced, OrderApproved or InvoiceIssued embeds in its
// struct to read the lines: events written before orders had lines carry one product in
// product_id, quantity and unit_price_cents instead, which All reads as one line (an
// upcast: old events are read in today's shape, never rewritten).
type OrderLines struct {
	Lines []OrderLine `json:"lines"`
	// The one product of an order placed before orders had lines.
	ProductID      string `json:"product_id,omitempty"`
	Quantity       int64  `json:"quantity,omitempty"`
	UnitPriceCents int64  `json:"unit_price_cents,omitempty"`
}

// All returns the lines; none when there are neither lines nor an old event's product.
func (o OrderLines) All() []OrderLine {
	if len(o.Lines) > 0 || o.ProductID == "" {
		return o.Lines
	}
	return []OrderLine{{ProductID: o.ProductID, Quantity: o.Quantity, UnitPriceCents: o.UnitPriceCents}}
}

// Event types of an invoice's stream, invoice-<order id>. The accounting service writes
// them.
const (
	// InvoiceIssued: {order_id, number, customer, lines (as OrderPlaced's), total_cents,
	// issued_at}, one per approved order. The order service records it on
	// the order's timeline.
	InvoiceIssued = "invoice.issued"
)
