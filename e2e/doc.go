// Package e2e holds sidestream's black-box tests: they start the real binary,
// real plugin subprocesses, real clusters and a real browser, and they enforce
// the repository's architecture (import rules) and the freshness of the
// generated plugin contract. The package has no non-test code.
package e2e
