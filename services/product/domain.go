package product

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/idgen"
	"github.com/msdemo/msdemo/internal/service"
)

// CategoryID and ProductID name a category and a product: 10 lowercase base32 characters
// (a-z, 2-7) chosen by the service.
type (
	CategoryID string
	ProductID  string
)

// idLen is the length of every id the service generates (50 random bits).
const idLen = 10

// newID returns a fresh random id.
func newID() string { return idgen.Short(idLen) }

// validID reports whether id has the shape of a generated id, so that a path like
// /products/../x never reaches the read model.
func validID(id string) bool { return idgen.IsShort(id, idLen) }

// Streams of the two aggregates.
func categoryStream(id CategoryID) string { return event.Category.Stream(string(id)) }
func productStream(id ProductID) string   { return event.Product.Stream(string(id)) }

// The events of the catalog's streams (category.*, and product.* with the order saga's
// stock events), and the order events the service answers, are declared in
// internal/event (types.go); this file holds the structs of their data.

// CategoryAddedData is the data of category.added.
type CategoryAddedData struct {
	ID   CategoryID `json:"id"`
	Name string     `json:"name"`
}

// CategoryRenamedData is the data of category.renamed.
type CategoryRenamedData struct {
	Name string `json:"name"`
}

// ProductFields are a product's editable fields: the data of product.updated, which
// replaces all of them.
type ProductFields struct {
	Name         string     `json:"name"`
	Description  string     `json:"description"`
	Supplier     string     `json:"supplier"`
	CategoryID   CategoryID `json:"category_id"`
	PriceCents   int64      `json:"price_cents"`
	UnitsInStock int64      `json:"units_in_stock"`
}

// ProductAddedData is the data of product.added.
type ProductAddedData struct {
	ID ProductID `json:"id"`
	ProductFields
}

// Category is a category as the read model holds it and the API shows it.
type Category struct {
	ID      CategoryID `json:"id"`
	Name    string     `json:"name"`
	Version int64      `json:"version"`
}

// Product is a product as the read model holds it and the API shows it. Image and
// Thumbnail are its pictures (product.image-set), absent from the JSON when it has none.
type Product struct {
	ID ProductID `json:"id"`
	ProductFields
	Version   int64    `json:"version"`
	Image     ImageRef `json:"image,omitzero"`
	Thumbnail ImageRef `json:"thumbnail,omitzero"`
}

// Limits of the input.
const (
	maxNameLen        = 100
	maxDescriptionLen = 2000
	maxSupplierLen    = 100
	maxPriceCents     = 100_000_000
	maxUnitsInStock   = 1_000_000
)

// CategoryInput is the body of POST /categories and PUT /categories/{id}. Pointers tell a
// missing field from an empty one.
type CategoryInput struct {
	Name *string `json:"name"`
}

// CategoryUpdate is the body of PUT /categories/{id}: the input and, optionally, the
// version the client saw.
type CategoryUpdate struct {
	CategoryInput
	ExpectedVersion *int64 `json:"expected_version"`
}

// ProductInput is the body of POST /products. Description and supplier may be left out
// (empty); the other fields are required.
type ProductInput struct {
	Name         *string `json:"name"`
	Description  *string `json:"description"`
	Supplier     *string `json:"supplier"`
	CategoryID   *string `json:"category_id"`
	PriceCents   *int64  `json:"price_cents"`
	UnitsInStock *int64  `json:"units_in_stock"`
}

// ProductUpdate is the body of PUT /products/{id}: every editable field (a full
// replacement, so a left-out description or supplier becomes empty) and the version the
// client saw, which is required.
type ProductUpdate struct {
	ProductInput
	ExpectedVersion *int64 `json:"expected_version"`
}

// ValidCategoryName returns the name of in, trimmed, or the field errors.
func (in CategoryInput) ValidCategoryName() (string, service.FieldErrors) {
	errs := service.FieldErrors{}
	name := checkText(errs, "name", in.Name, true, maxNameLen, false)
	if len(errs) > 0 {
		return "", errs
	}
	return name, nil
}

// ValidFields returns the product fields of in, text trimmed, or the field errors. It
// checks the shape of category_id, not that the category exists: the caller asks the read
// model (CheckCategory).
func (in ProductInput) ValidFields() (ProductFields, service.FieldErrors) {
	errs := service.FieldErrors{}
	f := ProductFields{
		Name:         checkText(errs, "name", in.Name, true, maxNameLen, false),
		Description:  checkText(errs, "description", in.Description, false, maxDescriptionLen, true),
		Supplier:     checkText(errs, "supplier", in.Supplier, false, maxSupplierLen, false),
		PriceCents:   checkInt(errs, "price_cents", in.PriceCents, 1, maxPriceCents),
		UnitsInStock: checkInt(errs, "units_in_stock", in.UnitsInStock, 0, maxUnitsInStock),
	}
	switch {
	case in.CategoryID == nil:
		errs["category_id"] = "required"
	case !validID(*in.CategoryID):
		errs["category_id"] = "unknown category"
	default:
		f.CategoryID = CategoryID(*in.CategoryID)
	}
	if len(errs) > 0 {
		return ProductFields{}, errs
	}
	return f, nil
}

// ValidExpectedVersion returns the expected version, which a product update must carry.
func (in ProductUpdate) ValidExpectedVersion() (int64, service.FieldErrors) {
	errs := service.FieldErrors{}
	v := checkInt(errs, "expected_version", in.ExpectedVersion, 1, 1<<53)
	if len(errs) > 0 {
		return 0, errs
	}
	return v, nil
}

// checkText returns *s trimmed, or records in errs why it is not acceptable: missing when
// required, empty when required, longer than max characters, or holding control
// characters (newlines and tabs are allowed when multiline).
func checkText(errs service.FieldErrors, field string, s *string, required bool, max int, multiline bool) string {
	if s == nil {
		if required {
			errs[field] = "required"
		}
		return ""
	}
	v := strings.TrimSpace(*s)
	switch {
	case required && v == "":
		errs[field] = "must not be empty"
	case utf8.RuneCountInString(v) > max:
		errs[field] = fmt.Sprintf("must be at most %d characters", max)
	case strings.ContainsFunc(v, func(r rune) bool {
		return unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\r' || r == '\t'))
	}):
		errs[field] = "must not contain control characters"
	}
	return v
}

// checkInt returns *n, or records in errs that it is missing or outside min..max.
func checkInt(errs service.FieldErrors, field string, n *int64, min, max int64) int64 {
	switch {
	case n == nil:
		errs[field] = "required"
		return 0
	case *n < min || *n > max:
		errs[field] = fmt.Sprintf("must be a whole number from %d to %d", min, max)
		return 0
	}
	return *n
}

// CheckCategoryName returns a 409 error when another category than self already has name,
// compared without case.
func CheckCategoryName(categories []Category, name string, self CategoryID) error {
	for _, c := range categories {
		if c.ID != self && strings.EqualFold(c.Name, name) {
			return &service.ConflictMessageError{Message: fmt.Sprintf("a category named %q exists already", c.Name)}
		}
	}
	return nil
}

// CheckCategoryDeletable returns a 409 error when the category still has products (not
// counting deleted ones).
func CheckCategoryDeletable(products int) error {
	if products > 0 {
		return &service.ConflictMessageError{Message: fmt.Sprintf("the category still has %d products: delete or move them first", products)}
	}
	return nil
}

// CheckExpectedVersion returns a *service.ConflictError when the client saw another
// version of the stream than the current one.
func CheckExpectedVersion(stream string, expected, current int64) error {
	if expected != current {
		return &service.ConflictError{Stream: stream, Current: current}
	}
	return nil
}

// The order saga (DESIGN.md, "The order saga"): this service holds the stock of an
// order's product. It reads order.placed and order.rejected of the order streams and
// answers on the product's stream.

// The reasons of product.stock-rejected.
const (
	ReasonDeleted      = "product deleted"
	ReasonOutOfStock   = "out of stock"
	ReasonPriceChanged = "price changed"
)

// OrderPlacedData is what this service reads of order.placed: the order and its lines
// (event.OrderLines, which also reads an order of one product from before orders had
// lines).
type OrderPlacedData struct {
	OrderID string `json:"order_id"`
	event.OrderLines
}

// OrderRejectedData is what this service reads of order.rejected.
type OrderRejectedData struct {
	OrderID string `json:"order_id"`
}

// StockData is the data of product.stock-reserved, -rejected and -released.
type StockData struct {
	OrderID  string `json:"order_id"`
	Quantity int64  `json:"quantity,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

// Stock is what the saga decides on: a product's price, units and whether it was deleted,
// at the version of its stream.
type Stock struct {
	PriceCents   int64
	UnitsInStock int64
	Deleted      bool
	Version      int64
}

// ReservationState is where a stock reservation of an order stands.
type ReservationState string

// The states of a reservation: one per (product, order), moved only by the product's own
// events, so that a rebuild from the events gives the same.
const (
	Reserved ReservationState = "reserved" // product.stock-reserved
	Rejected ReservationState = "rejected" // product.stock-rejected
	Released ReservationState = "released" // product.stock-released
)

// Reservation is the saga's record of one order in a product's stream. The zero
// Reservation (State "") says the product has not answered the order yet.
type Reservation struct {
	ProductID ProductID        `json:"product_id"`
	OrderID   string           `json:"order_id"`
	Quantity  int64            `json:"quantity"`
	State     ReservationState `json:"state"`
}

// stockNamespace makes the ids of the saga's events: "<order id>/<product id>/stock-reserved"
// names the one reservation of a line of an order, so that a decision made again after a
// crash is the same event and the event store stores it once.
var stockNamespace = idgen.NewNamespace("9a7c2e41-0f3b-4d58-8b6e-2c1d7f5a9e34")

func stockEvent(id ProductID, typ string, d StockData) event.New {
	e := service.NewEvent(typ, d)
	e.ID = stockNamespace.ID(d.OrderID + "/" + string(id) + "/" + strings.TrimPrefix(typ, string(event.Product)+"."))
	return e
}

// ReserveStock decides line l of order orderID for a product with stock s, whose record of
// the order is r: nothing when the product has answered the order already (r.State is
// set); otherwise product.stock-rejected when the product is deleted ("product
// deleted"), the line's unit price is not the current price ("price changed") or there
// are fewer units than ordered ("out of stock"), and product.stock-reserved of the
// quantity when none of these holds. The caller makes sure that the product exists.
func ReserveStock(s Stock, r Reservation, orderID string, l event.OrderLine) (event.New, bool) {
	reason := ""
	switch {
	case r.State != "":
		return event.New{}, false
	case s.Deleted:
		reason = ReasonDeleted
	case l.UnitPriceCents != s.PriceCents:
		reason = ReasonPriceChanged
	case l.Quantity < 1 || l.Quantity > s.UnitsInStock:
		reason = ReasonOutOfStock
	default:
		return stockEvent(r.ProductID, event.ProductStockReserved, StockData{OrderID: orderID, Quantity: l.Quantity}), true
	}
	return stockEvent(r.ProductID, event.ProductStockRejected, StockData{OrderID: orderID, Reason: reason}), true
}

// ReleaseStock decides the rejection of the order of r: product.stock-released of the
// units held when r is a reservation not yet released, nothing otherwise.
func ReleaseStock(r Reservation) (event.New, bool) {
	if r.State != Reserved {
		return event.New{}, false
	}
	return stockEvent(r.ProductID, event.ProductStockReleased, StockData{OrderID: r.OrderID, Quantity: r.Quantity}), true
}
