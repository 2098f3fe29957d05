package auth

import (
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func mustKey(t *testing.T, secrets ...[]byte) Key {
	t.Helper()
	k, err := NewKeySet(secrets...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var (
	secretA = []byte(strings.Repeat("a", 32))
	secretB = []byte(strings.Repeat("b", 32))
)

// signWith returns a JWT of claims with header kid, signed by method with key: the tokens
// a forger could make.
func signWith(t *testing.T, method jwt.SigningMethod, key any, kid string, claims jwt.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTokens(t *testing.T) {
	key := mustKey(t, secretA)
	other := mustKey(t, secretB)
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	claims := Claims{User: "ann", Role: Customer, ExpiresAt: now.Add(time.Hour)}
	token := key.Sign(claims)
	header, rest, _ := strings.Cut(token, ".")
	payload, sig, _ := strings.Cut(rest, ".")
	forged := other.Sign(Claims{User: "ann", Role: Manager, ExpiresAt: now.Add(time.Hour)})
	forgedPayload := strings.Split(forged, ".")[1]
	registered := func(role Role) jwtClaims {
		return jwtClaims{Role: role, RegisteredClaims: jwt.RegisteredClaims{Subject: "ann", Issuer: issuer,
			ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour))}}
	}
	// The payload says manager instead of customer; header and signature stay.
	decoded, _ := base64.RawURLEncoding.DecodeString(payload)
	promoted := strings.Replace(string(decoded), `"role":"customer"`, `"role":"manager"`, 1)
	if promoted == string(decoded) {
		t.Fatalf("payload %s has no customer role", decoded)
	}
	tampered := header + "." + base64.RawURLEncoding.EncodeToString([]byte(promoted)) + "." + sig

	tests := []struct {
		name    string
		key     Key
		token   string
		at      time.Time
		wantErr error
	}{
		{"valid", key, token, now, nil},
		{"expired", key, token, now.Add(time.Hour), ErrExpiredToken},
		{"other key set", other, token, now, ErrInvalidToken},
		{"zero key", Key{}, token, now, ErrInvalidToken},
		{"no signature", key, header + "." + payload, now, ErrInvalidToken},
		{"empty", key, "", now, ErrInvalidToken},
		{"tampered payload", key, tampered, now, ErrInvalidToken},
		{"payload of another key's token", key, header + "." + forgedPayload + "." + sig, now, ErrInvalidToken},
		{"garbage", key, "a.b.c", now, ErrInvalidToken},
		{"too long", key, token + strings.Repeat("x", maxTokenBytes), now, ErrInvalidToken},
		{"alg none", key, signWith(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, key.ID(), registered(Manager)), now, ErrInvalidToken},
		{"alg HS512 with the right secret", key, signWith(t, jwt.SigningMethodHS512, secretA, key.ID(), registered(Manager)), now, ErrInvalidToken},
		{"alg HS384 with the right secret", key, signWith(t, jwt.SigningMethodHS384, secretA, key.ID(), registered(Manager)), now, ErrInvalidToken},
		{"right secret, unknown kid", key, signWith(t, jwt.SigningMethodHS256, secretA, "0123456789abcdef", registered(Manager)), now, ErrInvalidToken},
		{"right secret, no kid", key, signWith(t, jwt.SigningMethodHS256, secretA, "", registered(Manager)), now, ErrInvalidToken},
		{"another issuer", key, signWith(t, jwt.SigningMethodHS256, secretA, key.ID(), jwtClaims{Role: Manager,
			RegisteredClaims: jwt.RegisteredClaims{Subject: "ann", Issuer: "elsewhere", ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour))}}), now, ErrInvalidToken},
		{"no expiry", key, signWith(t, jwt.SigningMethodHS256, secretA, key.ID(), jwtClaims{Role: Manager,
			RegisteredClaims: jwt.RegisteredClaims{Subject: "ann", Issuer: issuer}}), now, ErrInvalidToken},
		{"unknown role", key, signWith(t, jwt.SigningMethodHS256, secretA, key.ID(), registered("root")), now, ErrInvalidToken},
		{"forged and expired", key, signWith(t, jwt.SigningMethodHS256, secretB, key.ID(), registered(Manager)), now.Add(2 * time.Hour), ErrInvalidToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.key.Verify(tt.token, tt.at)
			if err != tt.wantErr {
				t.Fatalf("got error %v, want %v", err, tt.wantErr)
			}
			if err == nil && got != claims {
				t.Fatalf("got claims %+v, want %+v", got, claims)
			}
		})
	}
}

// A token keeps verifying after its key stops signing, until the key is retired.
func TestKeyRotation(t *testing.T) {
	now := time.Now()
	c := Claims{User: "mia", Role: Manager, ExpiresAt: now.Add(time.Hour).Truncate(time.Second).UTC()}
	before := mustKey(t, secretA)          // A signs
	during := mustKey(t, secretB, secretA) // B signs, A still verifies
	after := mustKey(t, secretB)           // A retired
	oldToken, newToken := before.Sign(c), during.Sign(c)

	for _, tt := range []struct {
		name    string
		key     Key
		token   string
		wantErr error
	}{
		{"old token, old key set", before, oldToken, nil},
		{"old token while rotating", during, oldToken, nil},
		{"new token while rotating", during, newToken, nil},
		{"new token, key set before rotating", before, newToken, ErrInvalidToken},
		{"old token after its key is retired", after, oldToken, ErrInvalidToken},
		{"new token after rotating", after, newToken, nil},
	} {
		got, err := tt.key.Verify(tt.token, now)
		if err != tt.wantErr || (err == nil && got != c) {
			t.Errorf("%s: got %+v, %v; want %+v, %v", tt.name, got, err, c, tt.wantErr)
		}
	}
	if during.ID() != KeyID(secretB) || before.ID() != KeyID(secretA) {
		t.Errorf("signing key ids: got %s and %s, want %s and %s", during.ID(), before.ID(), KeyID(secretB), KeyID(secretA))
	}
}

func TestKeysRefused(t *testing.T) {
	zero := hex.EncodeToString(make([]byte, 32))
	good := hex.EncodeToString(secretA)
	short := hex.EncodeToString(secretB[:31])
	for _, tt := range []struct {
		name, keys, want string
	}{
		{"short", short, "31 bytes, want at least 32"},
		{"zero", zero, "all zero bytes"},
		{"zero among others", good + "," + zero, "token key 2 is all zero bytes"},
		{"short among others", good + "," + short, "token key 2 has 31 bytes"},
		{"not hex", "xyz", "not hex"},
		{"twice", good + "," + good, "listed twice"},
		{"only commas", ",,", "no token key"},
	} {
		_, err := LoadKey(tt.keys, t.TempDir())
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "MSDEMO_TOKEN_KEY") {
			t.Errorf("%s: LoadKey(%q): got %v, want an error about MSDEMO_TOKEN_KEY saying %q", tt.name, tt.keys, err, tt.want)
		}
	}
	if err := (Key{}).Check(); err == nil {
		t.Error("the zero Key passed Check")
	}
	if err := mustKey(t, secretA).Check(); err != nil {
		t.Errorf("a key of 32 bytes failed Check: %v", err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "token.key"), []byte(zero+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKey("", dir); err == nil || !strings.Contains(err.Error(), "token.key") {
		t.Errorf("a token.key of zero bytes: got %v, want an error naming the file", err)
	}
}

// MSDEMO_TOKEN_KEY and token.key list keys the same way, the signing key first; today's
// single key keeps working, with the id derived from it.
func TestLoadKeyList(t *testing.T) {
	a, b := hex.EncodeToString(secretA), hex.EncodeToString(secretB)
	c := Claims{User: "u", Role: Customer, ExpiresAt: time.Now().Add(time.Minute)}
	single, err := LoadKey(a, "")
	if err != nil || single.ID() != KeyID(secretA) {
		t.Fatalf("single key: got id %q, %v; want %q", single.ID(), err, KeyID(secretA))
	}
	env, err := LoadKey(" "+b+" , "+a, "")
	if err != nil || env.ID() != KeyID(secretB) {
		t.Fatalf("two keys: got id %q, %v; want %q", env.ID(), err, KeyID(secretB))
	}
	if _, err := env.Verify(single.Sign(c), time.Now()); err != nil {
		t.Errorf("the second key of MSDEMO_TOKEN_KEY does not verify: %v", err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "token.key"), []byte(b+"\n\n"+a+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	file, err := LoadKey("", dir)
	if err != nil || file.ID() != KeyID(secretB) {
		t.Fatalf("token.key of two lines: got id %q, %v; want %q", file.ID(), err, KeyID(secretB))
	}
	if _, err := file.Verify(single.Sign(c), time.Now()); err != nil {
		t.Errorf("the second line of token.key does not verify: %v", err)
	}
}

func TestLoadKeyIsStable(t *testing.T) {
	dir := t.TempDir()
	a, err := LoadKey("", dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadKey("", dir)
	if err != nil {
		t.Fatal(err)
	}
	c := Claims{User: "u", Role: Manager, ExpiresAt: time.Now().Add(time.Minute)}
	if _, err := b.Verify(a.Sign(c), time.Now()); err != nil {
		t.Fatalf("key loaded twice from %s does not verify its own token: %v", dir, err)
	}
	if _, err := LoadKey("abc", dir); err == nil {
		t.Error("a 1.5-byte MSDEMO_TOKEN_KEY was accepted")
	}
}

func TestPasswords(t *testing.T) {
	h, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(h, "correct horse") || !CheckPassword(h, "correct horse") || CheckPassword(h, "wrong") {
		t.Errorf("hash %q does not check as it should", h)
	}
}

// Components that start at once in one DATA_DIR all end up with the same whole key.
func TestLoadKeyConcurrently(t *testing.T) {
	dir := t.TempDir()
	keys := make([]Key, 16)
	errs := make([]error, len(keys))
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() { keys[i], errs[i] = LoadKey("", dir) })
	}
	wg.Wait()
	c := Claims{User: "u", Role: Customer, ExpiresAt: time.Now().Add(time.Minute)}
	for i := range keys {
		if errs[i] != nil {
			t.Fatalf("LoadKey %d: %v", i, errs[i])
		}
		if _, err := keys[0].Verify(keys[i].Sign(c), time.Now()); err != nil {
			t.Fatalf("key %d differs from key 0", i)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	key, err := NewKey(secretA)
	if err != nil {
		b.Fatal(err)
	}
	token := key.Sign(Claims{User: "ann", Role: Customer, ExpiresAt: time.Now().Add(time.Hour)})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := key.Verify(token, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}
