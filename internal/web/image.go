package web

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"

	"github.com/go-chi/chi/v5"
)

// ImageURL is where a site serves the product picture id (HandleImage, at /images/{id}).
// A browser reaches the pictures through the site, as it does everything else: the
// gateway may not be reachable from it (compose publishes it, a cluster need not), and
// the pages' Content-Security-Policy loads images from the site's own origin only.
func ImageURL(id string) string { return "/images/" + url.PathEscape(id) }

// imageHeaders are the headers of the API's answer that HandleImage passes on.
var imageHeaders = []string{"Content-Type", "Content-Length", "ETag", "Cache-Control", "X-Content-Type-Options"}

// HandleImage serves a site's GET /images/{id}: the product picture id, read from the API
// (GET /product/images/{id}) and streamed to the browser with the API's Content-Type,
// Content-Length, ETag, Cache-Control and nosniff. The browser's If-None-Match goes on to
// the API, so a picture it has is a 304 with no body. An id that the API does not know,
// or finds malformed, is a 404; an API that cannot answer a 503.
func HandleImage(api *Client, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := chi.URLParam(r, "id")
		req, err := api.newRequest(r.Context(), "", r.Method, "/product/images/"+url.PathEscape(id), "", nil)
		if err != nil {
			http.Error(w, "no such picture", http.StatusNotFound)
			return
		}
		if tag := r.Header.Get("If-None-Match"); tag != "" {
			req.Header.Set("If-None-Match", tag)
		}
		resp, err := api.http.Do(req)
		if err != nil {
			logger.WarnContext(r.Context(), "read a picture", "id", id, "error", err)
			http.Error(w, "the shop's pictures cannot be read right now", http.StatusServiceUnavailable)
			return
		}
		defer resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK, http.StatusNotModified:
		case http.StatusNotFound, http.StatusBadRequest:
			http.Error(w, "no such picture", http.StatusNotFound)
			return
		default:
			logger.WarnContext(r.Context(), "read a picture", "id", id, "status", resp.StatusCode)
			http.Error(w, "the shop's pictures cannot be read right now", http.StatusServiceUnavailable)
			return
		}
		for _, name := range imageHeaders {
			if v := resp.Header.Get(name); v != "" {
				w.Header().Set(name, v)
			}
		}
		w.WriteHeader(resp.StatusCode)
		if resp.StatusCode == http.StatusNotModified {
			return
		}
		if _, err := io.Copy(w, resp.Body); err != nil && !errors.Is(err, r.Context().Err()) {
			logger.WarnContext(r.Context(), "send a picture", "id", id, "error", err)
		}
	})
}

// imageSize is n as an <img>'s width or height.
func imageSize(n int) string { return strconv.Itoa(n) }
