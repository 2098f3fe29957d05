package customer

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/msdemo/msdemo/internal/auth"
	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/idgen"
	"github.com/msdemo/msdemo/internal/service"
)

// This file holds the customer's rules: what valid input is, which events a command
// decides, and how events change a customer. It does no I/O.

// The events of a customer's stream, and the order events the service answers, are
// declared in internal/event (types.go); this file holds the structs of their data.

// Registered is the data of customer.registered. PasswordHash is a bcrypt hash: a
// password itself never goes into an event.
type Registered struct {
	Username     string    `json:"username"`
	FullName     string    `json:"full_name"`
	Email        string    `json:"email"`
	PasswordHash string    `json:"password_hash"`
	Role         auth.Role `json:"role"`
	CreditCents  int64     `json:"credit_cents"`
}

// ProfileUpdated is the data of customer.profile-updated.
type ProfileUpdated struct {
	FullName string `json:"full_name"`
	Email    string `json:"email"`
}

// PasswordChanged is the data of customer.password-changed.
type PasswordChanged struct {
	PasswordHash string `json:"password_hash"`
}

// CreditSet is the data of customer.credit-set: a manager set the credit to CreditCents.
type CreditSet struct {
	CreditCents int64 `json:"credit_cents"`
}

// CreditReservation is the data of customer.credit-reserved, -released and -rejected.
type CreditReservation struct {
	OrderID     string `json:"order_id"`
	AmountCents int64  `json:"amount_cents"`
	Reason      string `json:"reason,omitempty"`
}

// MaxCreditCents is the most credit a manager may set: 100 million in whole units.
const MaxCreditCents = 100_000_000_00

// Stream is the event stream of the customer username.
func Stream(username string) string { return event.Customer.Stream(username) }

// UsernameOf returns the username of a customer stream; ok is false for another stream.
func UsernameOf(stream string) (username string, ok bool) { return event.Customer.ID(stream) }

// Customer is a customer's state: what its events say so far. Version is the version of
// the last event applied to it (0: no such customer). PasswordVersion is the version of
// the event that set the password in force (customer.registered or
// customer.password-changed): login tokens carry it, and a change revokes the tokens of
// older ones (auth.Revocations).
type Customer struct {
	Username        string
	FullName        string
	Email           string
	PasswordHash    string
	Role            auth.Role
	CreditCents     int64
	Version         int64
	PasswordVersion int64
}

// ErrVersionGap says an event is more than one version ahead of the state it is applied
// to: an event before it is missing.
var ErrVersionGap = fmt.Errorf("event skips a version of its stream")

// Apply returns c changed by e, an event of c's stream. It is idempotent by stream
// version: an event at or below c.Version changes nothing (applied is false), one more
// than one version ahead is ErrVersionGap. A type Apply does not know only advances the
// version, so that this service keeps following streams that newer services write to.
func (c Customer) Apply(e event.Stored) (next Customer, applied bool, err error) {
	switch {
	case e.Version <= c.Version:
		return c, false, nil
	case e.Version > c.Version+1:
		return c, false, fmt.Errorf("%s version %d onto version %d: %w", e.Stream, e.Version, c.Version, ErrVersionGap)
	}
	if err := c.apply(e.Type, e.Data); err != nil {
		return c, false, fmt.Errorf("apply %s to %s version %d: %w", e.Type, e.Stream, e.Version, err)
	}
	c.Version = e.Version
	if e.Type == event.CustomerRegistered || e.Type == event.CustomerPasswordChanged {
		c.PasswordVersion = e.Version
	}
	return c, true, nil
}

// apply changes c by one event's data. Add the cases of new event types here.
func (c *Customer) apply(typ string, data json.RawMessage) error {
	switch typ {
	case event.CustomerRegistered:
		var d Registered
		if err := json.Unmarshal(data, &d); err != nil {
			return err
		}
		*c = Customer{Username: d.Username, FullName: d.FullName, Email: d.Email,
			PasswordHash: d.PasswordHash, Role: d.Role, CreditCents: d.CreditCents}
	case event.CustomerProfileUpdated:
		var d ProfileUpdated
		if err := json.Unmarshal(data, &d); err != nil {
			return err
		}
		c.FullName, c.Email = d.FullName, d.Email
	case event.CustomerPasswordChanged:
		var d PasswordChanged
		if err := json.Unmarshal(data, &d); err != nil {
			return err
		}
		c.PasswordHash = d.PasswordHash
	case event.CustomerCreditSet:
		var d CreditSet
		if err := json.Unmarshal(data, &d); err != nil {
			return err
		}
		c.CreditCents = d.CreditCents
	case event.CustomerCreditReserved, event.CustomerCreditReleased:
		var d CreditReservation
		if err := json.Unmarshal(data, &d); err != nil {
			return err
		}
		if typ == event.CustomerCreditReserved {
			c.CreditCents -= d.AmountCents
		} else {
			c.CreditCents += d.AmountCents
		}
	}
	// customer.credit-rejected and unknown types change nothing but the version.
	return nil
}

// With returns c with events applied, the first of them at version first: the state
// after a write, known without reading the read model again.
func (c Customer) With(events []event.New, first int64) (Customer, error) {
	for i, e := range events {
		next, _, err := c.Apply(event.Stored{Stream: Stream(c.Username), Version: first + int64(i), Type: e.Type, Data: e.Data})
		if err != nil {
			return c, err
		}
		c = next
	}
	return c, nil
}

// Registration is the input of POST /users.
type Registration struct {
	Username string `json:"username"`
	FullName string `json:"full_name"`
	Email    string `json:"email"`
	Password string `json:"password"`
}

// Register decides the registration r of a user with role and a starting credit: one
// customer.registered event with a bcrypt hash of the password. Invalid input is
// service.FieldErrors.
func Register(r Registration, role auth.Role, creditCents int64) ([]event.New, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	hash, err := auth.HashPassword(r.Password)
	if err != nil {
		return nil, fmt.Errorf("hash password of %s: %w", r.Username, err)
	}
	return []event.New{service.NewEvent(event.CustomerRegistered, Registered{Username: r.Username,
		FullName: strings.TrimSpace(r.FullName), Email: strings.TrimSpace(r.Email),
		PasswordHash: hash, Role: role, CreditCents: creditCents})}, nil
}

// Validate returns service.FieldErrors naming each invalid field, or nil.
func (r Registration) Validate() error {
	fields := service.FieldErrors{}
	check(fields, "username", usernameProblem(r.Username))
	check(fields, "full_name", fullNameProblem(r.FullName))
	check(fields, "email", emailProblem(r.Email))
	check(fields, "password", passwordProblem(r.Password))
	if len(fields) > 0 {
		return fields
	}
	return nil
}

// ProfileChange is the input of PUT /users/{username}. Password, when set, is the new
// password, and CurrentPassword must then be the password in force, unless
// SkipCurrentPassword is set (a manager sets another user's password; never from the
// JSON). ExpectedVersion, when set, is the version the client read.
type ProfileChange struct {
	FullName            string  `json:"full_name"`
	Email               string  `json:"email"`
	Password            *string `json:"password"`
	CurrentPassword     string  `json:"current_password"`
	ExpectedVersion     *int64  `json:"expected_version"`
	SkipCurrentPassword bool    `json:"-"`
}

// ErrWrongCurrentPassword says that a password change named a wrong current password.
var ErrWrongCurrentPassword = errors.New("wrong current password")

// UpdateProfile decides the change ch of c's profile: customer.profile-updated when the
// name or email differ, customer.password-changed when a password is given, none when
// nothing changes. A new password needs ch.CurrentPassword to be c's password (see
// SkipCurrentPassword): missing, it is a field error; wrong, ErrWrongCurrentPassword,
// and nothing changes. Invalid input is service.FieldErrors; when nothing changes and
// ch.ExpectedVersion is not c's version, it is a *service.ConflictError.
func UpdateProfile(c Customer, ch ProfileChange) ([]event.New, error) {
	needCurrent := !ch.SkipCurrentPassword
	fields := service.FieldErrors{}
	check(fields, "full_name", fullNameProblem(ch.FullName))
	check(fields, "email", emailProblem(ch.Email))
	if ch.Password != nil {
		check(fields, "password", passwordProblem(*ch.Password))
		if needCurrent && ch.CurrentPassword == "" {
			fields["current_password"] = "required to set a new password"
		}
	}
	check(fields, "expected_version", versionProblem(ch.ExpectedVersion, false))
	if len(fields) > 0 {
		return nil, fields
	}
	var events []event.New
	name, email := strings.TrimSpace(ch.FullName), strings.TrimSpace(ch.Email)
	if name != c.FullName || email != c.Email {
		events = append(events, service.NewEvent(event.CustomerProfileUpdated, ProfileUpdated{FullName: name, Email: email}))
	}
	if ch.Password != nil {
		if needCurrent && !auth.CheckPassword(c.PasswordHash, ch.CurrentPassword) {
			return nil, ErrWrongCurrentPassword
		}
		hash, err := auth.HashPassword(*ch.Password)
		if err != nil {
			return nil, fmt.Errorf("hash password of %s: %w", c.Username, err)
		}
		events = append(events, service.NewEvent(event.CustomerPasswordChanged, PasswordChanged{PasswordHash: hash}))
	}
	return events, unchangedConflict(c, events, ch.ExpectedVersion)
}

// CreditChange is the input of PUT /users/{username}/credit. Both fields are required;
// pointers tell a missing field from zero.
type CreditChange struct {
	CreditCents     *int64 `json:"credit_cents"`
	ExpectedVersion *int64 `json:"expected_version"`
}

// SetCredit decides a manager's change ch of c's credit: customer.credit-set, or none
// when the credit is already that. Errors as UpdateProfile's.
func SetCredit(c Customer, ch CreditChange) ([]event.New, error) {
	fields := service.FieldErrors{}
	switch {
	case ch.CreditCents == nil:
		fields["credit_cents"] = "required"
	case *ch.CreditCents < 0 || *ch.CreditCents > MaxCreditCents:
		fields["credit_cents"] = fmt.Sprintf("must be from 0 to %d", int64(MaxCreditCents))
	}
	check(fields, "expected_version", versionProblem(ch.ExpectedVersion, true))
	if len(fields) > 0 {
		return nil, fields
	}
	var events []event.New
	if *ch.CreditCents != c.CreditCents {
		events = append(events, service.NewEvent(event.CustomerCreditSet, CreditSet{CreditCents: *ch.CreditCents}))
	}
	return events, unchangedConflict(c, events, ch.ExpectedVersion)
}

// unchangedConflict is the conflict of a change that appends nothing (so the event store
// cannot check the version) while the client read another version.
func unchangedConflict(c Customer, events []event.New, expected *int64) error {
	if len(events) == 0 && expected != nil && *expected != c.Version {
		return &service.ConflictError{Stream: Stream(c.Username), Current: c.Version}
	}
	return nil
}

// Credentials is the input of POST /login.
type Credentials struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// Validate returns service.FieldErrors when a field is missing or too long to be right.
func (c Credentials) Validate() error {
	fields := service.FieldErrors{}
	switch {
	case c.Username == "":
		fields["username"] = "required"
	case len(c.Username) > 32:
		fields["username"] = "is too long"
	}
	switch {
	case c.Password == "":
		fields["password"] = "required"
	case len(c.Password) > 72:
		fields["password"] = "is too long"
	}
	if len(fields) > 0 {
		return fields
	}
	return nil
}

func check(fields service.FieldErrors, name, problem string) {
	if problem != "" {
		fields[name] = problem
	}
}

// usernameProblem says what is wrong with a username, or "": 3 to 32 of a-z, 0-9, '.',
// '_' and '-', starting with a letter.
func usernameProblem(s string) string {
	const rule = "must be 3 to 32 characters of a-z, 0-9, '.', '_' and '-', starting with a letter"
	if s == "" {
		return "required"
	}
	if len(s) < 3 || len(s) > 32 || s[0] < 'a' || s[0] > 'z' {
		return rule
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return rule
		}
	}
	return ""
}

// ValidUsername reports whether s is a username that a user may have.
func ValidUsername(s string) bool { return usernameProblem(s) == "" }

// fullNameProblem: 1 to 100 printable characters, not only spaces (surrounding spaces
// are trimmed).
func fullNameProblem(s string) string {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "required"
	case !utf8.ValidString(s):
		return "must be UTF-8 text"
	case utf8.RuneCountInString(s) > 100:
		return "must be at most 100 characters"
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return "must be printable characters only"
		}
	}
	return ""
}

// emailProblem: local@domain, at most 254 bytes, the local part 1 to 64 visible ASCII
// characters, the domain two or more labels of letters, digits and '-'.
func emailProblem(s string) string {
	const rule = "must be an email address such as ann@example.com"
	s = strings.TrimSpace(s)
	if s == "" {
		return "required"
	}
	if len(s) > 254 {
		return "must be at most 254 characters"
	}
	local, domain, ok := strings.Cut(s, "@")
	if !ok || local == "" || len(local) > 64 || strings.Contains(domain, "@") {
		return rule
	}
	for _, r := range local {
		if r <= ' ' || r > '~' || strings.ContainsRune(`"(),:;<>[\]`, r) {
			return rule
		}
	}
	labels := strings.Split(domain, ".")
	if len(labels) < 2 {
		return rule
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return rule
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return rule
			}
		}
	}
	return ""
}

// passwordProblem: 8 to 72 bytes (bcrypt reads no more than 72).
func passwordProblem(s string) string {
	switch {
	case s == "":
		return "required"
	case len(s) < 8 || len(s) > 72:
		return "must be 8 to 72 bytes"
	}
	return ""
}

func versionProblem(v *int64, required bool) string {
	switch {
	case v == nil && required:
		return "required: the version you read"
	case v != nil && *v < 1:
		return "must be the version you read (1 or more)"
	}
	return ""
}

// The order saga (DESIGN.md, "The order saga"): this service holds the credit of an
// order's customer. It reads order.placed and order.rejected of the order streams and
// answers on the customer's stream.

// ReasonNotEnoughCredit is the reason of customer.credit-rejected.
const ReasonNotEnoughCredit = "not enough credit"

// OrderPlaced is what this service reads of order.placed.
type OrderPlaced struct {
	OrderID    string `json:"order_id"`
	Customer   string `json:"customer"`
	TotalCents int64  `json:"total_cents"`
}

// OrderRejected is what this service reads of order.rejected.
type OrderRejected struct {
	OrderID  string `json:"order_id"`
	Customer string `json:"customer"`
}

// ReservationState is where a credit reservation of an order stands.
type ReservationState string

// The states of a reservation: one per (customer, order), moved only by the customer's
// own events, so that a rebuild from the events gives the same.
const (
	Reserved ReservationState = "reserved" // customer.credit-reserved: the credit is taken
	Rejected ReservationState = "rejected" // customer.credit-rejected: nothing was taken
	Released ReservationState = "released" // customer.credit-released: the credit is back
)

// Reservation is the saga's record of one order in a customer's stream. The zero
// Reservation (State "") says the customer has not answered the order yet.
type Reservation struct {
	OrderID     string
	AmountCents int64
	State       ReservationState
}

// ReservationOf returns the reservation that an event of the customer's stream records;
// ok is false for an event that is not about an order's credit.
func ReservationOf(typ string, data json.RawMessage) (r Reservation, ok bool, err error) {
	states := map[string]ReservationState{event.CustomerCreditReserved: Reserved, event.CustomerCreditRejected: Rejected,
		event.CustomerCreditReleased: Released}
	state, ok := states[typ]
	if !ok {
		return Reservation{}, false, nil
	}
	var d CreditReservation
	if err := json.Unmarshal(data, &d); err != nil {
		return Reservation{}, false, fmt.Errorf("decode %s: %w", typ, err)
	}
	return Reservation{OrderID: d.OrderID, AmountCents: d.AmountCents, State: state}, true, nil
}

// reservationNamespace makes the ids of the saga's events: "<order id>/credit-reserved"
// names the one reservation of an order, so that a decision made again after a crash is
// the same event and the event store stores it once.
var reservationNamespace = idgen.NewNamespace("3b0f5c1e-8d2a-4c6b-9e71-5a4f2d8c0b13")

func reservationEvent(typ string, d CreditReservation) event.New {
	e := service.NewEvent(typ, d)
	e.ID = reservationNamespace.ID(d.OrderID + "/" + strings.TrimPrefix(typ, string(event.Customer)+"."))
	return e
}

// ReserveCredit decides order o for customer c, whose record of o is r: nothing when c
// has answered o already (r.State is set), customer.credit-reserved of the order's total
// when c has that much credit, customer.credit-rejected ("not enough credit") otherwise.
// The caller makes sure that c exists.
func ReserveCredit(c Customer, r Reservation, o OrderPlaced) (event.New, bool) {
	switch {
	case r.State != "":
		return event.New{}, false
	case o.TotalCents >= 0 && o.TotalCents <= c.CreditCents:
		return reservationEvent(event.CustomerCreditReserved, CreditReservation{OrderID: o.OrderID, AmountCents: o.TotalCents}), true
	default:
		return reservationEvent(event.CustomerCreditRejected, CreditReservation{OrderID: o.OrderID, Reason: ReasonNotEnoughCredit}), true
	}
}

// ReleaseCredit decides the rejection of order orderID for a customer whose record of it
// is r: customer.credit-released of the amount held when r is a reservation not yet
// released, nothing otherwise.
func ReleaseCredit(r Reservation, orderID string) (event.New, bool) {
	if r.State != Reserved {
		return event.New{}, false
	}
	return reservationEvent(event.CustomerCreditReleased, CreditReservation{OrderID: orderID, AmountCents: r.AmountCents}), true
}
