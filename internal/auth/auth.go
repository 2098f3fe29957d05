// Package auth is msdemo's identity: signed, expiring bearer tokens that the customer
// service issues at login and that the gateway and every service verify, the roles, and
// password hashing.
//
// A token is a JWT (RFC 7519) signed with HS256 by the shop's token key; its header names
// the key ("kid") and its claims are sub (the user), role, iss ("msdemo"), iat and exp.
// Verify accepts only HS256 (no "none", no other algorithm) from a key it knows. The token
// key is a key set: one current key that signs, and older keys that still verify the
// tokens they signed until they are retired (removed). Every component that verifies
// tokens needs the same set: MSDEMO_TOKEN_KEY, or the file DATA_DIR/token.key that the
// all-in-one process shares (LoadKey). A key's id is derived from its bytes (KeyID).
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"
)

// Role is what a user may do.
type Role string

// The roles.
const (
	Customer Role = "customer"
	Manager  Role = "manager"
)

// The headers the gateway sets, from a valid token, on a request it lets through for a
// person, after removing any a client sent: so a request inside the shop that carries
// RoleHeader comes from a person, and one without it from a service.
const (
	UserHeader = "X-Msdemo-User"
	RoleHeader = "X-Msdemo-Role"
)

// Claims is what a token says about its bearer. A token keeps ExpiresAt to the second
// (a JWT's exp), rounded down. PasswordVersion is the version of the user's stream at
// which the password in force when the token was issued was set (its "pwv" claim; 0 in
// tokens without it): a password change revokes the tokens of older versions
// (Revocations).
type Claims struct {
	User            string    `json:"sub"`
	Role            Role      `json:"role"`
	ExpiresAt       time.Time `json:"exp"`
	PasswordVersion int64     `json:"pwv"`
}

// Errors of Verify, and of Revocations.Check.
var (
	ErrInvalidToken = errors.New("invalid token")
	ErrExpiredToken = errors.New("expired token")
	ErrRevokedToken = errors.New("revoked token")
)

// MinKeyBytes is the least number of bytes of a token key: HS256's own size.
const MinKeyBytes = 32

// issuer is every token's "iss".
const issuer = "msdemo"

// signingMethod is the only algorithm tokens are signed and verified with.
var signingMethod = jwt.SigningMethodHS256

// maxTokenBytes bounds what Verify parses.
const maxTokenBytes = 1024

// Key is the shop's token key set: it signs tokens with its current key and verifies
// tokens signed by any of its keys. The zero Key has no key: Check reports it, Verify
// refuses every token, and Sign panics. A Key is immutable and safe for concurrent use.
type Key struct {
	current string            // id of the key that signs
	byID    map[string][]byte // every key that verifies, by id
}

// KeyID is the id of secret in a token's "kid" header: the first 16 hex digits of its
// SHA-256, so that naming a key reveals nothing of it and needs no configuration.
func KeyID(secret []byte) string {
	sum := sha256.Sum256(secret)
	return hex.EncodeToString(sum[:8])
}

// NewKey returns a key set of the single key secret, which must have at least
// MinKeyBytes bytes and not all of them zero.
func NewKey(secret []byte) (Key, error) { return NewKeySet(secret) }

// NewKeySet returns the key set of secrets: the first signs, every one verifies. Each
// must have at least MinKeyBytes bytes, not all zero, and appear once.
func NewKeySet(secrets ...[]byte) (Key, error) {
	if len(secrets) == 0 {
		return Key{}, errors.New("no token key")
	}
	k := Key{byID: make(map[string][]byte, len(secrets))}
	for i, s := range secrets {
		if err := checkSecret(s); err != nil {
			if len(secrets) > 1 {
				return Key{}, fmt.Errorf("token key %d %w", i+1, err)
			}
			return Key{}, fmt.Errorf("token key %w", err)
		}
		id := KeyID(s)
		if _, dup := k.byID[id]; dup {
			return Key{}, fmt.Errorf("token key %d is listed twice", i+1)
		}
		k.byID[id] = append([]byte(nil), s...)
		if i == 0 {
			k.current = id
		}
	}
	return k, nil
}

// checkSecret returns what makes s unfit as a token key, or nil.
func checkSecret(s []byte) error {
	if len(s) < MinKeyBytes {
		return fmt.Errorf("has %d bytes, want at least %d (%d hex digits, e.g. `openssl rand -hex 32`)",
			len(s), MinKeyBytes, 2*MinKeyBytes)
	}
	for _, b := range s {
		if b != 0 {
			return nil
		}
	}
	return errors.New("is all zero bytes: set a random key (e.g. `openssl rand -hex 32`)")
}

// Check returns an error when k cannot sign and verify tokens: the zero Key, which a
// component given no key has. Components call it at start.
func (k Key) Check() error {
	if k.current == "" {
		return errors.New("no token key set")
	}
	return nil
}

// ID returns the id of the key that signs ("" for the zero Key).
func (k Key) ID() string { return k.current }

// LoadKey returns the key set in keys (MSDEMO_TOKEN_KEY: hex keys separated by commas,
// the signing key first) or, when keys is empty, in the file dataDir/token.key (one hex
// key per line, the signing key first; blank lines are ignored), which it creates with
// one random key on first use. Every key must have at least MinKeyBytes bytes, not all
// zero. To rotate, put a new key first and keep the old one after it while tokens it
// signed may live (a day, the login token's life); then remove it.
func LoadKey(keys, dataDir string) (Key, error) {
	if keys != "" {
		k, err := parseKeys(strings.Split(keys, ","))
		if err != nil {
			return Key{}, fmt.Errorf("MSDEMO_TOKEN_KEY: %w", err)
		}
		return k, nil
	}
	path := filepath.Join(dataDir, "token.key")
	if b, err := os.ReadFile(path); err == nil {
		k, err := parseKeys(strings.Split(string(b), "\n"))
		if err != nil {
			return Key{}, fmt.Errorf("%s: %w", path, err)
		}
		return k, nil
	}
	secret := make([]byte, MinKeyBytes)
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

// parseKeys decodes the hex keys of list, skipping blank entries.
func parseKeys(list []string) (Key, error) {
	var secrets [][]byte
	for _, h := range list {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		secret, err := hex.DecodeString(h)
		if err != nil {
			return Key{}, fmt.Errorf("token key %d is not hex: %w", len(secrets)+1, err)
		}
		secrets = append(secrets, secret)
	}
	return NewKeySet(secrets...)
}

// jwtClaims are the claims of a token as the JWT carries them.
type jwtClaims struct {
	Role            Role  `json:"role"`
	PasswordVersion int64 `json:"pwv,omitempty"`
	jwt.RegisteredClaims
}

// Sign returns a token for c, signed with k's current key. It panics for the zero Key
// (see Check).
func (k Key) Sign(c Claims) string {
	secret, ok := k.byID[k.current]
	if !ok {
		panic("auth: Sign with the zero Key")
	}
	t := jwt.NewWithClaims(signingMethod, jwtClaims{Role: c.Role, PasswordVersion: c.PasswordVersion, RegisteredClaims: jwt.RegisteredClaims{
		Subject: c.User, Issuer: issuer,
		IssuedAt: jwt.NewNumericDate(time.Now()), ExpiresAt: jwt.NewNumericDate(c.ExpiresAt)}})
	t.Header["kid"] = k.current
	token, err := t.SignedString(secret)
	if err != nil { // HMAC with a []byte key does not fail
		panic("auth: sign token: " + err.Error())
	}
	return token
}

// Verify returns the claims of token if it is an HS256 JWT signed by one of k's keys
// (named by its "kid"), issued by msdemo for a user with a known role, and not expired at
// now. It returns ErrExpiredToken for a genuine token past its exp, and ErrInvalidToken
// for anything else: another algorithm, an unknown or retired key, a bad signature, a
// malformed token.
func (k Key) Verify(token string, now time.Time) (Claims, error) {
	if len(token) > maxTokenBytes || len(k.byID) == 0 {
		return Claims{}, ErrInvalidToken
	}
	var jc jwtClaims
	_, err := jwt.ParseWithClaims(token, &jc, k.secretOf,
		jwt.WithValidMethods([]string{signingMethod.Alg()}), jwt.WithExpirationRequired(),
		jwt.WithIssuer(issuer), jwt.WithTimeFunc(func() time.Time { return now }))
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return Claims{}, ErrExpiredToken
	case err != nil, jc.Subject == "", jc.Role != Customer && jc.Role != Manager, jc.PasswordVersion < 0:
		return Claims{}, ErrInvalidToken
	}
	return Claims{User: jc.Subject, Role: jc.Role, ExpiresAt: jc.ExpiresAt.UTC(), PasswordVersion: jc.PasswordVersion}, nil
}

// secretOf is Verify's jwt.Keyfunc: the key the token's "kid" names.
func (k Key) secretOf(t *jwt.Token) (any, error) {
	id, _ := t.Header["kid"].(string)
	secret, ok := k.byID[id]
	if !ok {
		return nil, fmt.Errorf("unknown key id %q", id)
	}
	return secret, nil
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
