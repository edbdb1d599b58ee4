// Package auth is the client-facing SASL server: the broker side of
// SaslHandshake / SaslAuthenticate, written to answer exactly as Apache
// Kafka's SaslServerAuthenticator does, so that clients behave the same
// against the proxy's own listeners (local SASL termination) and against
// the in-memory test brokers as against a real cluster.
//
// A Mechanism (PLAIN, SCRAM-SHA-256/512, OAUTHBEARER) starts one Exchange
// per authentication attempt; an Exchange is multi-step so challenge and
// response mechanisms fit. A Server holds one connection's SASL state
// machine on kmsg types: handshake, authenticate (v0–v2), the v0 raw-token
// flow, KIP-368 session lifetimes and re-authentication.
//
// Credentials come from small interfaces (PasswordVerifier,
// ScramCredentialStore, TokenVerifier) so that users files, LDAP, JWT
// validation or plugins can be added without touching the protocol code.
// Nothing here keeps package-level mutable state: every value is built from
// its configuration and passed in.
package auth
