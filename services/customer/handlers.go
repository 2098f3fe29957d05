package customer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/msdemo/msdemo/internal/auth"
	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/httpjson"
	"github.com/msdemo/msdemo/internal/service"
)

// profile is a customer as the API shows it: never with the password hash.
type profile struct {
	Username    string    `json:"username"`
	FullName    string    `json:"full_name"`
	Email       string    `json:"email"`
	Role        auth.Role `json:"role"`
	CreditCents int64     `json:"credit_cents"`
	Version     int64     `json:"version"`
}

func profileOf(c Customer) profile {
	return profile{Username: c.Username, FullName: c.FullName, Email: c.Email, Role: c.Role,
		CreditCents: c.CreditCents, Version: c.Version}
}

// credit is the answer of the credit routes.
type credit struct {
	CreditCents int64 `json:"credit_cents"`
	Version     int64 `json:"version"`
}

// handleRegister serves POST /users: anyone may register as a customer. A taken username
// is 409; the append with expected version 0 makes that atomic.
func (a *app) handleRegister() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in Registration
		err := service.Decode(r, &in)
		if err == nil {
			err = in.Validate()
		}
		if err == nil {
			err = a.limits.register(r.Context(), clientAddress(r), in.Username)
		}
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		taken := &service.ConflictMessageError{Message: "username " + in.Username + " is taken"}
		// Ask the read model first: it spares a taken name the slow password hash.
		if _, err := a.users.Customer(r.Context(), in.Username); err == nil {
			service.Error(w, r, a.logger, taken)
			return
		} else if !errors.Is(err, service.ErrNotFound) {
			a.writeError(w, r, err)
			return
		}
		events, err := Register(in, auth.Customer, a.cfg.StartCreditCents)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		zero := int64(0)
		reply, err := a.rt.Write(r.Context(), Stream(in.Username), &zero, events...)
		var conflict *service.ConflictError
		if errors.As(err, &conflict) {
			err = taken
		}
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		c, err := Customer{}.With(events, reply.FirstVersion)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		httpjson.Write(w, http.StatusCreated, profileOf(c))
	})
}

// handleLogin serves POST /login: a token for the right username and password, 401
// with the same message for a wrong username or a wrong password, 429 when the login's
// rate limits are spent (limits.go; the password is not checked then).
func (a *app) handleLogin() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in Credentials
		err := service.Decode(r, &in)
		if err == nil {
			err = in.Validate()
		}
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		attempt, err := a.limits.login(r.Context(), clientAddress(r), in.Username)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		c, err := a.users.Customer(r.Context(), in.Username)
		if err != nil && !errors.Is(err, service.ErrNotFound) {
			// The password was not checked (the read model is down or rebuilt): no failure.
			if err := attempt.succeeded(r.Context()); err != nil {
				a.logger.WarnContext(r.Context(), "refund a login's rate limits", "error", err)
			}
			a.writeError(w, r, err)
			return
		}
		hash := c.PasswordHash
		if err != nil {
			hash = a.dummyHash // as slow as a wrong password: no hint which names exist
		}
		if !auth.CheckPassword(hash, in.Password) || err != nil {
			// A failure keeps what the attempt reserved (limiter.login).
			httpjson.Error(w, http.StatusUnauthorized, "wrong username or password")
			return
		}
		if err := attempt.succeeded(r.Context()); err != nil {
			a.logger.WarnContext(r.Context(), "refund a login's rate limits", "error", err)
		}
		httpjson.Write(w, http.StatusOK, a.newToken(c))
	})
}

// tokenAnswer is a new token as the API answers it. PasswordVersion is the token's
// (auth.Claims), for the sites, which keep it in their sessions to notice a revocation.
type tokenAnswer struct {
	Token           string    `json:"token"`
	Role            auth.Role `json:"role"`
	ExpiresAt       time.Time `json:"expires_at"`
	PasswordVersion int64     `json:"password_version"`
}

// newToken signs a token for c, bound to its password version.
func (a *app) newToken(c Customer) tokenAnswer {
	expires := time.Now().Add(a.cfg.TokenTTL).UTC().Truncate(time.Second)
	token := a.rt.TokenKey.Sign(auth.Claims{User: c.Username, Role: c.Role, ExpiresAt: expires,
		PasswordVersion: c.PasswordVersion})
	return tokenAnswer{Token: token, Role: c.Role, ExpiresAt: expires, PasswordVersion: c.PasswordVersion}
}

// writeError answers err as service.Error does, a *TooManyError with 429 and
// Retry-After, and a revoked token with 401.
func (a *app) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var tooMany *TooManyError
	switch {
	case errors.As(err, &tooMany):
		writeTooMany(w, tooMany)
	case errors.Is(err, auth.ErrRevokedToken):
		httpjson.Error(w, http.StatusUnauthorized, auth.RevokedMessage)
	default:
		service.Error(w, r, a.logger, err)
	}
}

// handleUserList serves GET /users (managers): every user, ordered by username, a page
// at a time (?limit=&after=); next_after is "" on the last page.
func (a *app) handleUserList() http.Handler {
	type answer struct {
		Users     []profile `json:"users"`
		NextAfter string    `json:"next_after"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit, after, err := service.PageParams(r)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		list, next, err := a.users.Customers(r.Context(), after, limit)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		out := answer{Users: make([]profile, 0, len(list)), NextAfter: next}
		for _, c := range list {
			out.Users = append(out.Users, profileOf(c))
		}
		httpjson.Write(w, http.StatusOK, out)
	})
}

// handleUserShow serves GET /users/{username}.
func (a *app) handleUserShow() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := a.customerFor(r)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		httpjson.Write(w, http.StatusOK, profileOf(c))
	})
}

// handleUserUpdate serves PUT /users/{username}: name, email and optionally password.
// A user who sets a new password names the current one (a manager setting another
// user's does not); a wrong one is a 400 of current_password that changes nothing and
// counts as a failed login (429 when those limits are spent). The change revokes every
// older token of the user (auth.Revocations); the answer then carries a new token for
// the user who changed their own password, so that the session that did it goes on.
func (a *app) handleUserUpdate() http.Handler {
	// answer is the profile, and the new token after a change of one's own password
	// (its role is the profile's).
	type answer struct {
		profile
		Token           string     `json:"token,omitempty"`
		ExpiresAt       *time.Time `json:"expires_at,omitempty"`
		PasswordVersion int64      `json:"password_version,omitempty"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := a.customerFor(r)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		var in ProfileChange
		if err := service.Decode(r, &in); err != nil {
			a.writeError(w, r, err)
			return
		}
		claims, _ := auth.FromContext(r.Context())
		own := claims.User == c.Username
		in.SkipCurrentPassword = !own
		var attempt *loginAttempt
		if in.Password != nil && own && in.CurrentPassword != "" {
			if attempt, err = a.limits.login(r.Context(), clientAddress(r), c.Username); err != nil {
				a.writeError(w, r, err)
				return
			}
		}
		passwordVersion := c.PasswordVersion
		c, err = a.change(r.Context(), c, in.ExpectedVersion, func(c Customer) ([]event.New, error) {
			return UpdateProfile(c, in)
		})
		if errors.Is(err, ErrWrongCurrentPassword) {
			// A failed login: it keeps what the attempt reserved (limiter.login).
			err = service.FieldErrors{"current_password": "is not your current password"}
		} else if err := attempt.succeeded(r.Context()); err != nil {
			a.logger.WarnContext(r.Context(), "refund a login's rate limits", "error", err)
		}
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		out := answer{profile: profileOf(c)}
		if own && c.PasswordVersion != passwordVersion {
			t := a.newToken(c)
			out.Token, out.ExpiresAt, out.PasswordVersion = t.Token, &t.ExpiresAt, t.PasswordVersion
		}
		httpjson.Write(w, http.StatusOK, out)
	})
}

// handleCreditShow serves GET /users/{username}/credit.
func (a *app) handleCreditShow() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := a.customerFor(r)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		httpjson.Write(w, http.StatusOK, credit{CreditCents: c.CreditCents, Version: c.Version})
	})
}

// handleCreditSet serves PUT /users/{username}/credit (managers): 409 when
// expected_version is not the customer's version.
func (a *app) handleCreditSet() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := a.customerFor(r)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		var in CreditChange
		if err := service.Decode(r, &in); err != nil {
			a.writeError(w, r, err)
			return
		}
		c, err = a.change(r.Context(), c, in.ExpectedVersion, func(c Customer) ([]event.New, error) {
			return SetCredit(c, in)
		})
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		httpjson.Write(w, http.StatusOK, credit{CreditCents: c.CreditCents, Version: c.Version})
	})
}

// customerFor returns the customer of the request's {username} when the caller may act
// for them (themself or a manager): service.ErrForbidden otherwise, even for a username
// that does not exist, and service.ErrNotFound for a manager asking for one.
func (a *app) customerFor(r *http.Request) (Customer, error) {
	name := r.PathValue("username")
	claims, _ := auth.FromContext(r.Context())
	if !claims.May(name) {
		return Customer{}, service.ErrForbidden
	}
	if err := a.revocations.Check(r.Context(), claims); err != nil {
		if !errors.Is(err, auth.ErrRevokedToken) {
			err = fmt.Errorf("%w: %w", service.ErrUnavailable, err) // Redis: 503, not 500
		}
		return Customer{}, err
	}
	if !ValidUsername(name) {
		return Customer{}, service.ErrNotFound
	}
	return a.users.Customer(r.Context(), name)
}

// change decides a change of c and appends its events, expecting the client's version,
// or, when the client sent none, c's version from the read model; after a conflict
// then it waits for the read model to catch up with the stream and decides once more.
// It returns c as the events leave it.
func (a *app) change(ctx context.Context, c Customer, expected *int64, decide func(Customer) ([]event.New, error)) (Customer, error) {
	for attempt := 0; ; attempt++ {
		events, err := decide(c)
		if err != nil || len(events) == 0 {
			return c, err
		}
		version := c.Version
		if expected != nil {
			version = *expected
		}
		reply, err := a.rt.Write(ctx, Stream(c.Username), &version, events...)
		var conflict *service.ConflictError
		if errors.As(err, &conflict) && expected == nil && attempt == 0 {
			if c, err = a.customerAt(ctx, c.Username, conflict.Current); err != nil {
				return c, err
			}
			continue
		}
		if err != nil {
			return c, err
		}
		return c.With(events, reply.FirstVersion)
	}
}

// customerAt returns the customer username once the read model has reached version
// (polling for at most 2 s; then the latest it has).
func (a *app) customerAt(ctx context.Context, username string, version int64) (Customer, error) {
	deadline := time.Now().Add(2 * time.Second)
	for {
		c, err := a.users.Customer(ctx, username)
		if err != nil || c.Version >= version || time.Now().After(deadline) {
			return c, err
		}
		select {
		case <-ctx.Done():
			return c, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}
