// Package embedded is the default wherehouse store. It needs no server:
// history lives in a bbolt file (one bucket per user and device, keyed by fix
// time so a time range is a range scan) and hot state (accounts, last
// positions) in a buntdb file. The last positions are derived from history
// and reconciled when the store opens, so a crash can never leave them behind.
package embedded
