// Package geo holds wherehouse's geometry: pure functions, no I/O.
package geo
