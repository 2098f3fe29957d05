// Package auth is msdemo's identity: signed, expiring bearer tokens that the customer
// service issues at login and that the gateway and every service verify, the roles, and
// password hashing.
//
// A token is "<payload>.<signature>", both base64url without padding; the payload is the
// JSON of Claims, the signature HMAC-SHA256 over the payload with the shop's token key.
// Every component that verifies tokens needs the same key (MSDEMO_TOKEN_KEY, or the file
// DATA_DIR/token.key that the all-in-one process shares).
package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Role is what a user may do.
type Role string

// The roles.
const (
	Customer Role = "customer"
	Manager  Role = "manager"
)

// Claims is what a token says about its bearer.
type Claims struct {
	User      string    `json:"sub"`
	Role      Role      `json:"role"`
	ExpiresAt time.Time `json:"exp"`
}

// Errors of Verify.
var (
	ErrInvalidToken = errors.New("invalid token")
	ErrExpiredToken = errors.New("expired token")
)

// Key signs and verifies tokens.
type Key struct{ secret []byte }

// NewKey returns a key for secret, which must have at least 32 bytes.
func NewKey(secret []byte) (Key, error) {
	if len(secret) < 32 {
		return Key{}, fmt.Errorf("token key has %d bytes, want at least 32", len(secret))
	}
	return Key{secret: secret}, nil
}

// LoadKey returns the key from hexSecret (MSDEMO_TOKEN_KEY, 64 hex digits or more) or,
// when it is empty, from the file dataDir/token.key, which it creates with a random key
// on first use.
func LoadKey(hexSecret, dataDir string) (Key, error) {
	if hexSecret != "" {
		secret, err := hex.DecodeString(hexSecret)
		if err != nil {
			return Key{}, fmt.Errorf("MSDEMO_TOKEN_KEY is not hex: %w", err)
		}
		return NewKey(secret)
	}
	path := filepath.Join(dataDir, "token.key")
	if b, err := os.ReadFile(path); err == nil {
		secret, err := hex.DecodeString(strings.TrimSpace(string(b)))
		if err != nil {
			return Key{}, fmt.Errorf("%s is not hex: %w", path, err)
		}
		return NewKey(secret)
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return Key{}, fmt.Errorf("create DATA_DIR: %w", err)
	}
	// Write the key whole into a file of its own, then link it into place: when several
	// components start at once, exactly one link succeeds, and nobody reads a half-written
	// key (os.Link fails when the name exists; a rename would replace it).
	tmp, err := os.CreateTemp(dataDir, ".token.key-*")
	if err != nil {
		return Key{}, fmt.Errorf("create %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(hex.EncodeToString(secret) + "\n")
	if err == nil {
		err = tmp.Chmod(0o600)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Key{}, fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Link(tmp.Name(), path); errors.Is(err, os.ErrExist) {
		return LoadKey("", dataDir) // another component was first: use its key
	} else if err != nil {
		return Key{}, fmt.Errorf("create %s: %w", path, err)
	}
	return NewKey(secret)
}

// Sign returns a token for c.
func (k Key) Sign(c Claims) string {
	payload, _ := json.Marshal(c)
	p := base64.RawURLEncoding.EncodeToString(payload)
	return p + "." + base64.RawURLEncoding.EncodeToString(k.mac(p))
}

func (k Key) mac(payload string) []byte {
	m := hmac.New(sha256.New, k.secret)
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// Verify returns the claims of token if its signature is right and it has not expired at
// now. It returns ErrInvalidToken or ErrExpiredToken otherwise.
func (k Key) Verify(token string, now time.Time) (Claims, error) {
	var c Claims
	p, sig, ok := strings.Cut(token, ".")
	if !ok || len(token) > 1024 {
		return c, ErrInvalidToken
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, k.mac(p)) {
		return c, ErrInvalidToken
	}
	payload, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil || json.Unmarshal(payload, &c) != nil || c.User == "" || (c.Role != Customer && c.Role != Manager) {
		return c, ErrInvalidToken
	}
	if !now.Before(c.ExpiresAt) {
		return c, ErrExpiredToken
	}
	return c, nil
}

// BearerToken returns the token of an "Authorization: Bearer <token>" header value, or "".
func BearerToken(header string) string {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// HashPassword returns a bcrypt hash of password.
func HashPassword(password string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	return string(h), err
}

// CheckPassword reports whether password matches hash.
func CheckPassword(hash, password string) bool {
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
}

type claimsKey struct{}

// WithClaims returns ctx carrying c.
func WithClaims(ctx context.Context, c Claims) context.Context {
	return context.WithValue(ctx, claimsKey{}, c)
}

// FromContext returns the claims that authenticated the request of ctx; ok is false for an
// anonymous request.
func FromContext(ctx context.Context) (c Claims, ok bool) {
	c, ok = ctx.Value(claimsKey{}).(Claims)
	return c, ok
}

// May reports whether c may act for user: the user themself or a manager.
func (c Claims) May(user string) bool {
	return c.Role == Manager || c.User == user
}
