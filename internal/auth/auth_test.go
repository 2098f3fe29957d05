package auth

import (
	"strings"
	"sync"
	"testing"
	"time"
)

func TestTokens(t *testing.T) {
	key, err := NewKey([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewKey([]byte(strings.Repeat("o", 32)))
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	claims := Claims{User: "ann", Role: Customer, ExpiresAt: now.Add(time.Hour)}
	token := key.Sign(claims)
	payload, _, _ := strings.Cut(token, ".")
	forged := Key{secret: []byte("x")}.Sign(Claims{User: "ann", Role: Manager, ExpiresAt: now.Add(time.Hour)})
	_, forgedSig, _ := strings.Cut(forged, ".")

	tests := []struct {
		name    string
		key     Key
		token   string
		at      time.Time
		wantErr error
	}{
		{"valid", key, token, now, nil},
		{"expired", key, token, now.Add(time.Hour), ErrExpiredToken},
		{"other key", other, token, now, ErrInvalidToken},
		{"no signature", key, payload, now, ErrInvalidToken},
		{"empty", key, "", now, ErrInvalidToken},
		{"payload swapped", key, strings.Split(forged, ".")[0] + "." + strings.Split(token, ".")[1], now, ErrInvalidToken},
		{"signature of another key", key, payload + "." + forgedSig, now, ErrInvalidToken},
		{"garbage", key, "a.b.c", now, ErrInvalidToken},
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
