// Package storetest is the contract every storage backend must meet. A
// backend's own tests call Run with a function that opens a fresh, empty
// store; Run exercises storage.Messages, storage.Last and storage.Users
// through the public interfaces only, so the embedded backend and any later
// one (PostgreSQL) are held to exactly the same behaviour. The layout follows
// ntfy's message_cache_test.go, which runs one suite on every cache backend.
//
// Beyond the interface comments, the suite pins down what they leave
// implicit: payloads come back byte for byte from Locations and
// LastLocations alike (no JSON re-encoding, so not jsonb); "sorted" means
// Go string order (bytes, not a locale collation); user and device names
// are arbitrary topic levels and may contain characters special to glob
// patterns or SQL LIKE; Append copies its input; and fn may call the store,
// because a backend must not hold a lock across calls of fn.
package storetest
