package service

import (
	"fmt"
	"net/http"
)

// Page limits of list endpoints.
const (
	DefaultPageLimit = 50
	MaxPageLimit     = 500
)

// PageParams reads a list endpoint's ?limit= (1 to MaxPageLimit, default
// DefaultPageLimit) and ?after= (the sort key of the last item of the previous page).
func PageParams(r *http.Request) (limit int, after string, err error) {
	limit = DefaultPageLimit
	if v := r.URL.Query().Get("limit"); v != "" {
		if _, scanErr := fmt.Sscanf(v, "%d", &limit); scanErr != nil || limit < 1 || limit > MaxPageLimit || fmt.Sprint(limit) != v {
			return 0, "", FieldErrors{"limit": fmt.Sprintf("must be a whole number from 1 to %d", MaxPageLimit)}
		}
	}
	after = r.URL.Query().Get("after")
	if len(after) > 200 {
		return 0, "", FieldErrors{"after": "is too long"}
	}
	return limit, after, nil
}
