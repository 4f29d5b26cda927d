// Package gatehouse holds Gatehouse's domain: the types every layer speaks
// (accounts, tokens, projects, applications, audit events, RBAC settings),
// the one error type with its codes, and the Store interface that the
// storage backends implement.
//
// It imports only the standard library. Rules live in package service,
// storage in package store and its backends, HTTP in package server.
package gatehouse
