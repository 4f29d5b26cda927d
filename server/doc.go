// Package server is Gatehouse's HTTP layer: the route table, credential
// extraction, middleware (request ids, logging, limits, security headers,
// metrics, audit of every authenticated request), the one map from error
// code to HTTP status, the JSON API handlers and the web dashboard. It
// speaks to package service only; it never reaches into storage.
package server
