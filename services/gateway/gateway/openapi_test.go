package gateway

import (
	"slices"
	"strings"
	"testing"
)

// TestOpenAPIMatchesRoutes: the document describes exactly the routes the
// gateway serves.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc []string
	path := ""
	inPaths := false
	for _, line := range strings.Split(string(openapi), "\n") {
		switch {
		case line == "paths:":
			inPaths = true
		case inPaths && strings.HasPrefix(line, "  /") && strings.HasSuffix(line, ":"):
			path = strings.TrimSuffix(strings.TrimSpace(line), ":")
		case inPaths && path != "" && (line == "    get:" || line == "    post:" || line == "    put:" || line == "    delete:"):
			doc = append(doc, strings.ToUpper(strings.TrimSuffix(strings.TrimSpace(line), ":"))+" "+path)
		case inPaths && line != "" && !strings.HasPrefix(line, " "):
			inPaths = false
		}
	}
	routes := slices.Clone(Routes)
	for i, r := range routes {
		routes[i] = strings.Replace(r, "/{$}", "/", 1)         // ServeMux's exact-match root
		routes[i] = strings.Replace(routes[i], "...}", "}", 1) // a wildcard over the path's rest
	}
	slices.Sort(doc)
	slices.Sort(routes)
	if !slices.Equal(doc, routes) {
		t.Fatalf("openapi.yaml describes\n  %v\nthe gateway serves\n  %v", doc, routes)
	}
}
