// Package idgen makes the shop's ids, in one place: random UUIDs for events and for the
// event store itself (New), name-based UUIDs for the events that must come out the same
// when they are decided again (Namespace.ID, Namespace.ShortID), and short random ids for what people see in
// URLs, such as an order or a product (Short), and cheap unique ids made by the thousand,
// such as request ids (Sequence).
//
// Secrets (token keys, generated passwords) are not ids and are not made here: they take
// their bytes from crypto/rand where they are used.
package idgen

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/google/uuid"
)

// New returns a new random id: a version 4 UUID in its 36-character text form, such as
// "0b6e8a4c-8d21-4a57-b1a8-6c3a2e0f9d11". It is safe for concurrent use.
func New() string { return uuid.NewString() }

// Namespace is a space of name-based ids. Each kind of deterministic id has its own, so
// that the same name in two kinds gives two ids.
type Namespace struct{ uuid uuid.UUID }

// NewNamespace returns the namespace written as the UUID s. It panics if s is not a UUID:
// namespaces are constants of the program, and a malformed one is a programmer's mistake.
func NewNamespace(s string) Namespace { return Namespace{uuid.MustParse(s)} }

// ID returns the id of name in ns: a version 5 (SHA-1) UUID, the same for the same
// namespace and name on every machine and in every run. A decision made again after a
// crash thus gets the id it had the first time, and the event store stores it once.
func (ns Namespace) ID(name string) string { return uuid.NewSHA1(ns.uuid, []byte(name)).String() }

// ShortID returns the id of name in ns in the form of a Short id of n characters (1 to
// MaxShortLen): the same on every machine and in every run, such as the order of one
// checkout of a cart, placed once however often the checkout is sent.
func (ns Namespace) ShortID(name string, n int) string {
	if n < 1 || n > MaxShortLen {
		panic("idgen: Short id length out of range") // a programmer's mistake
	}
	sum := sha256.Sum256(append(ns.uuid[:], name...))
	return strings.ToLower(base32.StdEncoding.EncodeToString(sum[:]))[:n]
}

// ShortAlphabet is the characters of a Short id: lower-case RFC 4648 base32.
const ShortAlphabet = "abcdefghijklmnopqrstuvwxyz234567"

// MaxShortLen is the longest Short id (130 random bits).
const MaxShortLen = 26

// Short returns a new random id of n characters from ShortAlphabet, 5 random bits each
// (crypto/rand.Text, lower-cased): short enough for a URL, and safe in a stream name and
// a path segment. n must be 1 to MaxShortLen; Short panics otherwise.
func Short(n int) string {
	if n < 1 || n > MaxShortLen {
		panic("idgen: Short id length out of range") // a programmer's mistake
	}
	return strings.ToLower(rand.Text()[:n])
}

// IsShort reports whether s has the shape of an id that Short(n) makes, so that input such
// as a path's "../x" never reaches a store.
func IsShort(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

// Sequence makes ids that are unique across processes and cheap enough for one per
// request (the request ids): a random prefix per Sequence and a counter, e.g.
// "3f9a1c2b-1kz". It is safe for concurrent use.
type Sequence struct {
	prefix string
	n      atomic.Uint64
}

// NewSequence returns a sequence with a new random prefix.
func NewSequence() *Sequence {
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return &Sequence{prefix: hex.EncodeToString(b[:]) + "-"}
}

// Append appends a new id to buf and returns the extended buffer (no allocation when buf
// has room for it).
func (g *Sequence) Append(buf []byte) []byte {
	return strconv.AppendUint(append(buf, g.prefix...), g.n.Add(1), 36)
}

// New returns a new id.
func (g *Sequence) New() string {
	var buf [32]byte
	return string(g.Append(buf[:0]))
}
