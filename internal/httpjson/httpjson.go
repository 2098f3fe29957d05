// Package httpjson is the one encode/decode pair of msdemo's JSON APIs and their error shape:
// {"error": "...", "fields": {"name": "required"}}.
package httpjson

import (
	"encoding/json"
	"net/http"
)

// ErrorBody is the JSON body of every error answer.
type ErrorBody struct {
	Error  string            `json:"error"`
	Fields map[string]string `json:"fields,omitempty"`
}

// Write answers status with v as JSON.
func Write(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Error answers status with {"error": msg}.
func Error(w http.ResponseWriter, status int, msg string) {
	Write(w, status, ErrorBody{Error: msg})
}

// FieldErrors answers 400 with msg and a message per invalid field.
func FieldErrors(w http.ResponseWriter, msg string, fields map[string]string) {
	Write(w, http.StatusBadRequest, ErrorBody{Error: msg, Fields: fields})
}
