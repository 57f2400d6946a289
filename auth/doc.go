// Package auth holds wherehouse's accounts and who may do what: password
// hashing (bcrypt), credential checks with a short-lived cache so a busy
// HTTP client or a reconnect storm does not pay bcrypt on every request,
// and the MQTT topic rules. It denies by default.
package auth
