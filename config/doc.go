// Package config owns the configuration of `gatehouse server`: its settings
// and their defaults, how they are layered, and their validation.
//
// Settings are layered in this order, each layer overriding the one before:
//
//  1. defaults (Default);
//  2. an optional YAML file, named by --config or GATEHOUSE_CONFIG, decoded
//     strictly so that a misspelt key is an error rather than a silently
//     ignored setting;
//  3. GATEHOUSE_* environment variables (an empty variable counts as unset);
//  4. command-line flags, but only those the user actually set.
//
// Validate then checks the result once and reports every problem together,
// each naming its setting (and the variable or flag it came from), so an
// operator fixes a broken config in one round instead of one error per
// restart.
//
// Durations accept Go's syntax ("90s", "12h") plus a day suffix ("7d",
// "1d12h"); see ParseDuration.
//
// The package reads the environment only through the getenv function passed
// to Load and holds no state of its own.
package config
