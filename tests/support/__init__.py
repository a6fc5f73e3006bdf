"""Helpers that tests and benchmarks share: real peers (a private Dovecot) and small sinks."""
