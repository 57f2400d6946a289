//go:build !linux

package embedded

// releaseMapped is a no-op where /proc/self/maps does not exist.
func releaseMapped(string) error { return nil }
