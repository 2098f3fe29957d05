package service

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
)

// Decode reads the JSON body of r into v, whatever its Content-Type says (curl -d sends
// application/x-www-form-urlencoded; the API authenticates with bearer tokens, not
// cookies, so a browser's cross-site form post gains nothing). Unknown fields, trailing
// data, a body that is not JSON and a body that is too large are all FieldErrors or errors
// that Error maps to 400 or 413. On an error, v may be partly set.
//
// Every case is told from the error's type, never its text: *http.MaxBytesError,
// *json.SyntaxError, *json.UnmarshalTypeError. encoding/json has no type for an unknown
// field (Go 1.26), so when decoding fails otherwise, Decode asks encoding/json which
// member it does not know (unknownField).
func Decode(r *http.Request, v any) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return err
		}
		return FieldErrors{"body": "could not be read: " + err.Error()}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return FieldErrors{"body": "is empty: send a JSON object"}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var syntaxErr *json.SyntaxError
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &typeErr) && typeErr.Field != "":
			return FieldErrors{typeErr.Field: "must be a " + jsonKind(typeErr.Type.Kind().String())}
		case errors.As(err, &syntaxErr), errors.Is(err, io.ErrUnexpectedEOF):
			return FieldErrors{"body": "is not valid JSON: " + err.Error()}
		}
		if name, ok := unknownField(body, v); ok {
			return FieldErrors{name: "is not a known field"}
		}
		return FieldErrors{"body": "is not valid: " + err.Error()}
	}
	if dec.More() {
		return FieldErrors{"body": "has data after the JSON object"}
	}
	return nil
}

// unknownField returns the first member of the JSON object body that the type v points to
// does not have, as encoding/json resolves names (tags, case folding, embedded structs).
// It asks encoding/json itself rather than copying its rules: {"<name>": null} decodes
// with DisallowUnknownFields into a fresh value of that type exactly when name is known,
// since null sets nothing. Only the top level is probed; an unknown member deeper down
// is Decode's "is not valid" (no request body of the API nests objects).
func unknownField(body []byte, v any) (name string, ok bool) {
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Pointer {
		return "", false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return "", false
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		name, _ := tok.(string)
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return "", false
		}
		probe, err := json.Marshal(map[string]any{name: nil})
		if err != nil {
			return "", false
		}
		pd := json.NewDecoder(bytes.NewReader(probe))
		pd.DisallowUnknownFields()
		if pd.Decode(reflect.New(t.Elem()).Interface()) != nil {
			return name, true
		}
	}
	return "", false
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
