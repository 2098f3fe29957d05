package idgen_test

import (
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/msdemo/msdemo/internal/idgen"
)

func TestNew(t *testing.T) {
	a, b := idgen.New(), idgen.New()
	u, err := uuid.Parse(a)
	if err != nil || u.Version() != 4 || len(a) != 36 {
		t.Fatalf("got %q (%v), want a version 4 UUID in text form", a, err)
	}
	if a == b {
		t.Errorf("got %q twice, want two different ids", a)
	}
}

// TestNamespaceID pins ids made before this package existed: the services' deterministic
// event ids must not change, or a decision made again after an upgrade would be stored
// twice.
func TestNamespaceID(t *testing.T) {
	ns := idgen.NewNamespace("6f1c0a4e-5b7d-4f0e-9a53-0d9b7e8c2a11")
	got := ns.ID("abcdefghijkl/approved")
	// The id that uuid.NewSHA1 gave for this namespace and name before.
	if want := "d55acb65-ae35-5c8e-92ab-09d3e131e413"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if ns.ID("abcdefghijkl/approved") != got {
		t.Error("the same name gave two ids")
	}
	if ns.ID("abcdefghijkl/rejected") == got {
		t.Error("two names gave one id")
	}
	if idgen.NewNamespace("5b0c4a62-6a53-4f0e-9b8e-0d3c2a8f7e11").ID("abcdefghijkl/approved") == got {
		t.Error("one name in two namespaces gave one id")
	}
}

func TestNamespaceShortID(t *testing.T) {
	ns := idgen.NewNamespace("6f1c0a4e-5b7d-4f0e-9a53-0d9b7e8c2a11")
	got := ns.ShortID("ann/7", 12)
	if !idgen.IsShort(got, 12) {
		t.Errorf("ShortID = %q, want a Short id of 12", got)
	}
	if ns.ShortID("ann/7", 12) != got {
		t.Error("the same name gave two ids")
	}
	if ns.ShortID("ann/8", 12) == got || ns.ShortID("bob/7", 12) == got {
		t.Error("two names gave one id")
	}
	if idgen.NewNamespace("5b0c4a62-6a53-4f0e-9b8e-0d3c2a8f7e11").ShortID("ann/7", 12) == got {
		t.Error("one name in two namespaces gave one id")
	}
}

func TestNewNamespacePanicsOnMalformed(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("NewNamespace(\"not a uuid\") did not panic")
		}
	}()
	idgen.NewNamespace("not a uuid")
}

func TestShort(t *testing.T) {
	seen := map[string]bool{}
	for _, n := range []int{1, 10, 12, idgen.MaxShortLen} {
		for range 100 {
			id := idgen.Short(n)
			if !idgen.IsShort(id, n) || strings.Trim(id, idgen.ShortAlphabet) != "" {
				t.Fatalf("Short(%d) = %q, want %d characters of %s", n, id, n, idgen.ShortAlphabet)
			}
			if n >= 10 && seen[id] {
				t.Fatalf("Short(%d) gave %q twice", n, id)
			}
			seen[id] = true
		}
	}
	for _, n := range []int{0, -1, idgen.MaxShortLen + 1} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Short(%d) did not panic", n)
				}
			}()
			idgen.Short(n)
		}()
	}
}

func TestIsShort(t *testing.T) {
	tests := []struct {
		s    string
		n    int
		want bool
	}{
		{"abcdefghij", 10, true},
		{"a2b3c4d5e6", 10, true},
		{"abcdefghi", 10, false},
		{"abcdefghijk", 10, false},
		{"Abcdefghij", 10, false},
		{"abcdefghi1", 10, false}, // 0, 1, 8 and 9 are not base32
		{"abcdefgh/.", 10, false},
		{"", 0, true},
		{"", 10, false},
	}
	for _, tt := range tests {
		if got := idgen.IsShort(tt.s, tt.n); got != tt.want {
			t.Errorf("IsShort(%q, %d) = %v, want %v", tt.s, tt.n, got, tt.want)
		}
	}
}
