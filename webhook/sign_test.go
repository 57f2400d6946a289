package webhook

import (
	"strings"
	"testing"
)

func TestSignVerify(t *testing.T) {
	body := []byte(`{"event":"enter","tst":1700000000}`)
	good := Sign("s3cr3t", body)
	// A fixed vector, computed independently with Python's hmac module.
	if got, want := Sign("key", []byte("hello")), "sha256=9307b3b915efb5171ff14d8cb55fbcc798c6c0ef1456d66ded1a6aa723a58b7b"; got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
	tests := []struct {
		name   string
		secret string
		body   []byte
		header string
		want   bool
	}{
		{"valid", "s3cr3t", body, good, true},
		{"upper-case hex", "s3cr3t", body, "sha256=" + strings.ToUpper(strings.TrimPrefix(good, "sha256=")), true},
		{"wrong secret", "other", body, good, false},
		{"changed body", "s3cr3t", []byte(`{"event":"leave","tst":1700000000}`), good, false},
		{"empty header", "s3cr3t", body, "", false},
		{"no prefix", "s3cr3t", body, strings.TrimPrefix(good, "sha256="), false},
		{"other algorithm", "s3cr3t", body, "sha1=" + strings.TrimPrefix(good, "sha256="), false},
		{"not hex", "s3cr3t", body, "sha256=zz" + good[9:], false},
		{"truncated", "s3cr3t", body, good[:len(good)-2], false},
		{"odd length", "s3cr3t", body, good[:len(good)-1], false},
		{"prefix only", "s3cr3t", body, "sha256=", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Verify(tt.secret, tt.body, tt.header); got != tt.want {
				t.Errorf("Verify(%q, %q) = %v, want %v", tt.secret, tt.header, got, tt.want)
			}
		})
	}
}
