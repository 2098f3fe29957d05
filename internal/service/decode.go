package service

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
)

// Decode reads the JSON body of r into v, whatever its Content-Type says (curl -d sends
// application/x-www-form-urlencoded; the API authenticates with bearer tokens, not
// cookies, so a browser's cross-site form post gains nothing). Unknown fields, trailing
// data, a body that is not JSON and a body that is too large are all FieldErrors or errors
// that Error maps to 400 or 413.
func Decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooLarge *http.MaxBytesError
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &tooLarge):
			return err
		case errors.As(err, &typeErr) && typeErr.Field != "":
			return FieldErrors{typeErr.Field: "must be a " + jsonKind(typeErr.Type.Kind().String())}
		case errors.Is(err, io.EOF):
			return FieldErrors{"body": "is empty: send a JSON object"}
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return FieldErrors{field: "is not a known field"}
		default:
			return FieldErrors{"body": "is not valid JSON: " + err.Error()}
		}
	}
	if dec.More() {
		return FieldErrors{"body": "has data after the JSON object"}
	}
	return nil
}

func jsonKind(goKind string) string {
	switch goKind {
	case "int", "int64", "int32", "uint", "uint64":
		return "whole number"
	case "float64", "float32":
		return "number"
	case "bool":
		return "true or false"
	case "struct", "map":
		return "JSON object"
	case "slice":
		return "JSON array"
	}
	return goKind
}
