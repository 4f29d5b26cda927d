// Package bench holds Gatehouse's benchmarks: the in-process cost of the
// full request check against two references (the floor and the Argo CD
// approach), a load driver (./load) and a scale run (./scale). See
// README.md for how to run them and the last numbers measured.
package bench
