package middleware

import "net/http"

// ContentSecurityPolicy is the policy of the sites' pages. Scripts, styles, images,
// fonts, the manifest and connections (htmx requests, SSE) come from the site itself
// only: no inline script, style or event handler, no eval (htmx's hx-on and js: values
// stay unused, and the layout turns allowEval and the injected indicator style off), no
// plugins, no <base>. Forms post to the site only, and no other site may frame a page.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// SecurityHeaders sets, on every answer of next, the headers that a browser obeys to keep
// a page safe: ContentSecurityPolicy; X-Content-Type-Options: nosniff (a file is only
// what its Content-Type says); Referrer-Policy: same-origin (no page address leaves the
// site); X-Frame-Options: DENY for browsers that predate frame-ancestors; and
// Cross-Origin-Opener-Policy: same-origin (a page opened from another site gets no handle
// on it). Strict-Transport-Security is left to the proxy that terminates TLS, which knows
// that the site is served over HTTPS. The headers are set before next runs; next may
// override them.
func SecurityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}
