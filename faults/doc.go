// Package faults is msitfeed's fault and abuse suite. It holds no code of
// its own, only tests: each one injects a fault or feeds hostile input into
// the real wiring — the msitfeed binary or the real packages, a fake MSIT
// site served over HTTP (feeds/msit/msittest), an in-process SMTP server
// (mailer/smtptest), SQLite in a temporary directory — and measures what the
// product promises: no item lost or corrupted, feeds served with the last
// good data, no digest doubled, nothing hostile reaching a feed, a page or a
// mail. The tests log their figures (go test -v ./faults) in the form of the
// Reliability table in the README.
//
// It must not mock msitfeed's own code, and must not reach into other
// packages' internals: what it cannot observe from outside, it does not
// claim.
package faults
