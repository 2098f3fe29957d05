package gateway

import (
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// accessNames are the x-msdemo-access values of the document for the policy's access levels.
var accessNames = map[who]string{
	whoAnyone:        "anyone",
	whoLoggedIn:      "logged-in",
	whoCustomer:      "customer",
	whoManager:       "manager",
	whoSelfOrManager: "self-or-manager",
}

var httpMethods = []string{"get", "put", "post", "delete", "patch", "head", "options", "trace"}

// TestOpenAPIMatchesPolicy checks that the document describes exactly the routes of the
// policy, with the same access, and the error statuses the gateway itself can give.
func TestOpenAPIMatchesPolicy(t *testing.T) {
	var doc map[string]any
	if err := yaml.Unmarshal(openAPI, &doc); err != nil {
		t.Fatalf("parse openapi.yaml: %v", err)
	}
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.0.") {
		t.Errorf("openapi: got %q, want 3.0.x", v)
	}
	paths, _ := doc["paths"].(map[string]any)

	inDoc := map[string]string{} // "GET /path" -> x-msdemo-access
	for path, item := range paths {
		item, _ := item.(map[string]any)
		for _, m := range httpMethods {
			op, ok := item[m].(map[string]any)
			if !ok {
				continue
			}
			key := strings.ToUpper(m) + " " + path
			access, _ := op["x-msdemo-access"].(string)
			inDoc[key] = access
			checkOperation(t, doc, key, item, op, access)
		}
	}
	inPolicy := map[string]string{}
	for _, r := range policy {
		inPolicy[r.method+" "+r.pattern] = accessNames[r.access.who]
	}

	for _, key := range slices.Sorted(maps.Keys(inPolicy)) {
		got, ok := inDoc[key]
		switch {
		case !ok:
			t.Errorf("%s is in the policy, not in openapi.yaml", key)
		case got != inPolicy[key]:
			t.Errorf("%s: got x-msdemo-access %q in openapi.yaml, want %q as in the policy", key, got, inPolicy[key])
		}
	}
	for _, key := range slices.Sorted(maps.Keys(inDoc)) {
		if _, ok := inPolicy[key]; !ok {
			t.Errorf("%s is in openapi.yaml, not in the policy", key)
		}
	}
	checkTree(t, doc, doc, "")
}

var pathParam = regexp.MustCompile(`\{([^}]+)\}`)

// checkOperation checks that op declares its path parameters, security and the statuses
// that the gateway answers for it.
func checkOperation(t *testing.T, doc map[string]any, key string, item, op map[string]any, access string) {
	t.Helper()
	path := strings.SplitN(key, " ", 2)[1]
	declared := map[string]bool{}
	for _, params := range []any{item["parameters"], op["parameters"]} {
		list, _ := params.([]any)
		for _, p := range list {
			p := resolve(doc, p)
			if p["in"] == "path" {
				declared[p["name"].(string)] = true
			}
		}
	}
	for _, m := range pathParam.FindAllStringSubmatch(path, -1) {
		if !declared[m[1]] {
			t.Errorf("%s: path parameter %s is not declared", key, m[1])
		}
	}
	if _, ok := op["security"].([]any); !ok {
		t.Errorf("%s: no security", key)
	}
	responses, _ := op["responses"].(map[string]any)
	want := []string{"401"} // a bad token, on every route
	if access != "anyone" && access != "logged-in" {
		want = append(want, "403")
	}
	if strings.Contains(path, "{") {
		want = append(want, "404")
	}
	if strings.Count(path, "/") > 1 { // forwarded to a service
		want = append(want, "503")
	}
	for _, status := range want {
		if _, ok := responses[status]; !ok {
			t.Errorf("%s: no %s response", key, status)
		}
	}
	for status := range responses {
		if !strings.HasPrefix(status, "2") {
			continue
		}
		for _, other := range []string{"200", "201", "202", "204"} {
			if _, ok := responses[other]; ok && other != status {
				t.Errorf("%s: responses %s and %s, want one success status", key, status, other)
			}
		}
	}
}

// resolve returns v, or what it refers to if it is a {$ref: "#/..."}.
func resolve(doc map[string]any, v any) map[string]any {
	m, _ := v.(map[string]any)
	ref, ok := m["$ref"].(string)
	if !ok {
		return m
	}
	var cur any = doc
	for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		next, _ := cur.(map[string]any)
		cur = next[part]
	}
	target, _ := cur.(map[string]any)
	return target
}

var (
	jsonField      = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	schemaKeywords = []string{"$ref", "type", "format", "description", "enum", "items", "properties",
		"required", "additionalProperties", "example", "minimum", "maximum", "maxLength", "nullable"}
)

// checkTree checks that every $ref under v points to something in doc, and that every
// property of a schema is a snake_case JSON field with a schema of known keywords (an
// unquoted comma in a YAML flow mapping makes a key of half a sentence).
func checkTree(t *testing.T, doc map[string]any, v any, where string) {
	t.Helper()
	switch v := v.(type) {
	case map[string]any:
		if ref, ok := v["$ref"].(string); ok && resolve(doc, v) == nil {
			t.Errorf("%s: $ref %q points to nothing", where, ref)
		}
		if props, ok := v["properties"].(map[string]any); ok {
			for name, schema := range props {
				if !jsonField.MatchString(name) {
					t.Errorf("%s: property %q, want a snake_case field name", where, name)
				}
				schema, _ := schema.(map[string]any)
				for k := range schema {
					if !slices.Contains(schemaKeywords, k) {
						t.Errorf("%s/%s: schema key %q, want one of %v", where, name, k, schemaKeywords)
					}
				}
			}
		}
		for k, child := range v {
			checkTree(t, doc, child, where+"/"+k)
		}
	case []any:
		for _, child := range v {
			checkTree(t, doc, child, where+"/[]")
		}
	}
}
