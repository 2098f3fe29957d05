// Package static holds the assets both sites serve under /static/: the vendored htmx 2 and
// its SSE extension (vendor/README.md says where they come from), the shop's own script
// (js/shop.js: what the pages do besides htmx, since they carry no inline script), the
// shop's stylesheet,
// the web app manifest and its icons. They are embedded in the binary, so nothing is
// fetched at run time.
//
// Pages link to an asset with Path, which adds a fingerprint of its content
// ("/static/css/shop.css?v=1a2b3c4d"); Handler serves such a URL as immutable for a year,
// and any other URL of an asset with an ETag and Cache-Control: no-cache, so a browser
// revalidates it. A new build with changed content gets a new fingerprint, so browsers
// never keep stale CSS or scripts.
package static

//go:generate go run ./genicons -out icons

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed vendor/*.js js/*.js css/*.css icons/*.png manifest.webmanifest
var files embed.FS

// FS is every asset, by its path under /static/ ("css/shop.css").
var FS fs.FS = files

// Prefix is where Handler expects to be mounted.
const Prefix = "/static/"

// fingerprints maps an asset's path to the first 8 hex digits of its sha256. It is
// computed from the embedded files, which never change while the program runs.
var fingerprints = func() map[string]string {
	m := map[string]string{}
	_ = fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		m[p] = hex.EncodeToString(sum[:4])
		return nil
	})
	return m
}()

// Path returns the URL of the asset name ("css/shop.css") with its fingerprint. It panics
// for an asset that does not exist, which is a programmer's mistake that every page test
// catches.
func Path(name string) string {
	v, ok := fingerprints[name]
	if !ok {
		panic("static: no asset " + name)
	}
	return Prefix + name + "?v=" + v
}

// Handler serves the assets; mount it at Prefix. A request whose ?v= matches the asset's
// fingerprint is cacheable for a year; others revalidate with the ETag.
func Handler() http.Handler {
	fileServer := http.StripPrefix(strings.TrimSuffix(Prefix, "/"), http.FileServerFS(files))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(path.Clean(r.URL.Path), Prefix)
		v, ok := fingerprints[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if r.URL.Query().Get("v") == v {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "no-cache")
		}
		w.Header().Set("ETag", `"`+v+`"`)
		if path.Ext(name) == ".webmanifest" {
			w.Header().Set("Content-Type", "application/manifest+json")
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		fileServer.ServeHTTP(w, r)
	})
}
