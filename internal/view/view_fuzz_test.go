package view

import (
	"encoding/json"
	"testing"
)

// FuzzParse checks that any body is refused with an error or parsed as an announcement a
// site can act on (a view, and an item or all of them) that survives being encoded again.
// The seed corpus is in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"view":"order","id":"Ab12cd34ef","owner":"ann","version":3,"position":1201,"created":true}`))
	f.Add([]byte(`{"view":"order","all":true}`))
	f.Add([]byte(`{"view":"order"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := Parse(body)
		if err != nil {
			return
		}
		if c.View == "" || (c.ID == "" && !c.All) {
			t.Fatalf("body %q: accepted %+v", body, c)
		}
		encoded, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		if again, err := Parse(encoded); err != nil || again != c {
			t.Fatalf("body %q: accepted %+v, encoded as %s, parsed again as %+v (%v)", body, c, encoded, again, err)
		}
	})
}
