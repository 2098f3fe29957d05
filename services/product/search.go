package product

import (
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"unicode"

	"github.com/msdemo/msdemo/internal/httpjson"
	"github.com/msdemo/msdemo/internal/service"
)

// Bounds of a search: the words of q that count, their length, and how deep a page may
// start.
const (
	maxSearchWords  = 10
	maxSearchLength = 200
	maxSearchOffset = 10_000
)

// searchPage is the body of GET /search.
type searchPage struct {
	Products   []Product `json:"products"`
	NextOffset int       `json:"next_offset"` // 0 on the last page
}

// searchWords returns the words of q: its runs of letters and digits, lower-cased.
func searchWords(q string) []string {
	return strings.FieldsFunc(strings.ToLower(q), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}

// handleSearch serves GET /search?q=words[&limit=&offset=]: the products whose name,
// description or supplier hold every word (or a word starting with it), case-insensitive,
// best match first (Store.Search), a page of limit from offset.
func handleSearch(store *Store, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit, _, err := service.PageParams(r)
		if err != nil {
			service.Error(w, r, logger, err)
			return
		}
		q := r.URL.Query()
		fields := service.FieldErrors{}
		words := searchWords(q.Get("q"))
		switch {
		case len(q.Get("q")) > maxSearchLength:
			fields["q"] = "is too long (at most " + strconv.Itoa(maxSearchLength) + " characters)"
		case len(words) == 0:
			fields["q"] = "required: a word to look for"
		case len(words) > maxSearchWords:
			fields["q"] = "has too many words (at most " + strconv.Itoa(maxSearchWords) + ")"
		}
		offset := 0
		if v := q.Get("offset"); v != "" {
			if offset, err = strconv.Atoi(v); err != nil || offset < 0 || offset > maxSearchOffset || strconv.Itoa(offset) != v {
				fields["offset"] = "must be a whole number from 0 to " + strconv.Itoa(maxSearchOffset)
			}
		}
		if len(fields) > 0 {
			service.Error(w, r, logger, fields)
			return
		}
		ps, more, err := store.Search(r.Context(), words, limit, offset)
		if err != nil {
			service.Error(w, r, logger, err)
			return
		}
		page := searchPage{Products: ps}
		if more {
			page.NextOffset = offset + limit
		}
		httpjson.Write(w, http.StatusOK, page)
	})
}
