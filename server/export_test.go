package server

// RoutePatterns lists the route table's patterns in order, for the tests
// of package server_test that cover every route (the bad-input matrix).
func RoutePatterns() []string {
	var out []string
	for _, rt := range (&Server{}).routeTable() {
		out = append(out, rt.pattern)
	}
	return out
}
