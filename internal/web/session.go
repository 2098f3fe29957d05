package web

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/alexedwards/scs/goredisstore"
	"github.com/alexedwards/scs/v2"
	"github.com/redis/go-redis/v9"

	"github.com/msdemo/msdemo/internal/auth"
	"github.com/msdemo/msdemo/internal/redisclient"
)

// SessionConfig says where sessions live and what their cookie is.
type SessionConfig struct {
	RedisURL string
	// Prefix prefixes every session key in Redis, e.g. "msdemo:storefront:session:".
	Prefix string
	// CookieName must differ between sites on one host: browsers share cookies across
	// ports.
	CookieName string
	// Lifetime is the longest a session lives (default 24 h, a login token's life).
	Lifetime time.Duration
	// Secure marks the cookie Secure (HTTPS only); false for http://localhost.
	Secure bool
	// RevocationPrefix is the key prefix of the token revocations (default
	// auth.DefaultRevocationPrefix; see SiteConfig).
	RevocationPrefix string
}

// Sessions are the users' sessions, kept in Redis so that every replica of a site shares
// them. The cookie is HttpOnly and SameSite=Lax.
type Sessions struct {
	*scs.SessionManager
	rdb         *redis.Client
	revocations *auth.Revocations
}

// User is who is logged in, as the session keeps it.
type User struct {
	Username  string
	Role      string // "customer" or "manager"
	Token     string // bearer token for the API
	ExpiresAt time.Time
	// PasswordVersion is the token's (the login answer's password_version): a password
	// change revokes the token, and the session with it.
	PasswordVersion int64
}

// Kind of a flash message, also its CSS class suffix.
type FlashKind string

// Flash kinds.
const (
	FlashSuccess FlashKind = "success"
	FlashError   FlashKind = "error"
	FlashInfo    FlashKind = "info"
)

// Flash is a message shown once, on the next page the user sees.
type Flash struct {
	Kind    FlashKind
	Message string
}

const (
	userKey  = "user"
	flashKey = "flash"
)

// OpenSessions connects to Redis (failing with a hint when it is not reachable) and
// returns the session manager. Close closes its Redis client.
func OpenSessions(ctx context.Context, cfg SessionConfig) (*Sessions, error) {
	rdb, err := redisclient.Open(ctx, cfg.RedisURL, nil)
	if err != nil {
		return nil, err
	}
	sm := scs.New()
	sm.Store = goredisstore.NewWithPrefix(rdb, cmp.Or(cfg.Prefix, "msdemo:session:"))
	sm.Lifetime = cmp.Or(cfg.Lifetime, 24*time.Hour)
	sm.Cookie.Name = cmp.Or(cfg.CookieName, "session")
	sm.Cookie.HttpOnly = true
	sm.Cookie.SameSite = http.SameSiteLaxMode
	sm.Cookie.Secure = cfg.Secure
	sm.Cookie.Path = "/"
	return &Sessions{SessionManager: sm, rdb: rdb,
		revocations: auth.NewRevocations(rdb, cmp.Or(cfg.RevocationPrefix, auth.DefaultRevocationPrefix), 0)}, nil
}

// Close closes the connection to Redis.
func (s *Sessions) Close() error { return s.rdb.Close() }

// User returns the logged-in user of the request's session, if any. An expired token
// counts as logged out, and so does a token that a password change revoked (made on
// another browser, or through the API): the session then forgets the user and says why
// on the next page. When Redis cannot tell whether the token is revoked, the request
// counts as logged out too (the session keeps the user).
func (s *Sessions) User(ctx context.Context) (User, bool) {
	var u User
	if !s.getJSON(ctx, userKey, &u) || u.Token == "" || !u.ExpiresAt.After(time.Now()) {
		return User{}, false
	}
	if err := s.revocations.Check(ctx, auth.Claims{User: u.Username, PasswordVersion: u.PasswordVersion}); err != nil {
		if errors.Is(err, auth.ErrRevokedToken) {
			s.Remove(ctx, userKey)
			s.AddFlash(ctx, FlashInfo, "Your password was changed, so this session has ended. Please log in again.")
		}
		return User{}, false
	}
	return u, true
}

// Login stores u in the session under a new session id (against session fixation).
func (s *Sessions) Login(ctx context.Context, u User) error {
	if err := s.RenewToken(ctx); err != nil {
		return fmt.Errorf("renew session: %w", err)
	}
	s.putJSON(ctx, userKey, u)
	return nil
}

// Logout forgets the user and starts a new, empty session.
func (s *Sessions) Logout(ctx context.Context) error {
	if err := s.RenewToken(ctx); err != nil {
		return fmt.Errorf("renew session: %w", err)
	}
	s.Remove(ctx, userKey)
	return nil
}

// AddFlash queues a message for the next page.
func (s *Sessions) AddFlash(ctx context.Context, kind FlashKind, message string) {
	var flashes []Flash
	s.getJSON(ctx, flashKey, &flashes)
	s.putJSON(ctx, flashKey, append(flashes, Flash{Kind: kind, Message: message}))
}

// PopFlashes returns the queued messages and forgets them.
func (s *Sessions) PopFlashes(ctx context.Context) []Flash {
	var flashes []Flash
	if s.getJSON(ctx, flashKey, &flashes) {
		s.Remove(ctx, flashKey)
	}
	return flashes
}

// The session keeps its values as JSON strings: scs encodes a session with gob, which
// would need every stored type registered (gob.Register) in an init function.

func (s *Sessions) getJSON(ctx context.Context, key string, v any) bool {
	raw := s.GetString(ctx, key)
	return raw != "" && json.Unmarshal([]byte(raw), v) == nil
}

func (s *Sessions) putJSON(ctx context.Context, key string, v any) {
	b, _ := json.Marshal(v) // User and []Flash always encode
	s.Put(ctx, key, string(b))
}
