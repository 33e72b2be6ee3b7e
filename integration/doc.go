// Package integration runs rblmilter end to end against the real software
// admins run it with: Postfix and Sendmail as the MTA, rbldnsd serving the
// DNS lists, supervisord as the process manager, and checks the shipped
// contrib/ files by using them.
//
// The tests carry the build tag "integration" so that a plain
// `go test ./...` stays a quick unit-test run. `./scripts/test.sh` installs
// what they need (as root, from Debian packages) and runs them with
// `go test -tags integration ./integration/...`. Where something they need
// is missing they skip with a message naming it, except when the CI
// environment variable is set: then a missing piece is a failure.
//
// Everything runs on loopback or inside network namespaces the tests
// create; every process they start is stopped by PID when the test ends.
package integration
