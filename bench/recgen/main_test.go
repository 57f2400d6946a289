package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wherehouse/wherehouse/importer"
	"github.com/wherehouse/wherehouse/recorder"
	"github.com/wherehouse/wherehouse/storage/embedded"
)

// generateStore runs recgen into a new directory and returns it.
func generateStore(t *testing.T, args ...string) string {
	t.Helper()
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), append([]string{"-dir", dir}, args...), &stdout, &stderr); err != nil {
		t.Fatalf("recgen: %v (stderr %s)", err, stderr.String())
	}
	if !strings.HasPrefix(stdout.String(), "RESULT points=") {
		t.Fatalf("output %q, want a RESULT line", stdout.String())
	}
	return dir
}

// TestImport checks that wherehouse's importer reads every generated line
// as a new location, with the owner taken from the rec/<user>/<device>/
// path.
func TestImport(t *testing.T) {
	const points = 3001
	dir := generateStore(t, "-points", "3001", "-devices", "4", "-users", "3",
		"-interval", "10m", "-stagger", "240h", "-start", "2025-01-20T00:00:00Z")
	items, err := importer.Plan([]string{dir}, importer.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	store, err := embedded.Open(t.Context(), t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	im := importer.New(store, importer.Options{})
	var sum importer.Summary
	owners := map[string]bool{}
	for _, it := range items {
		f, err := os.Open(it.Path)
		if err != nil {
			t.Fatal(err)
		}
		s, err := im.Import(t.Context(), f, it.Source, importer.RunOptions{})
		f.Close()
		if err != nil {
			t.Fatalf("import %s: %v", it.Path, err)
		}
		sum.Add(s, 5)
		owners[it.User+"/"+it.Device] = true
	}
	if sum.New != points || sum.Skipped != 0 {
		t.Fatalf("imported %d new, skipped %d (%+v); want %d new", sum.New, sum.Skipped, sum.Skips, points)
	}
	for _, o := range []string{"user0/dev0", "user1/dev1", "user2/dev2", "user0/dev3"} {
		if !owners[o] {
			t.Errorf("no files of %s; got %v", o, owners)
		}
	}
	// 10 days apart and 750 fixes of ~10 min (~5 days) each: two months.
	if n := len(items); n < 5 {
		t.Errorf("%d files, want one per device and month (at least 5)", n)
	}
}

// TestLines checks each line against the Recorder's format and what the
// payloads claim: locations wherehouse's parser accepts, about 200 bytes,
// in the file of their month, tst advancing by 0.5–1.5 × -interval.
func TestLines(t *testing.T) {
	dir := generateStore(t, "-points", "5000", "-devices", "2", "-users", "1", "-interval", "26s", "-start", "2025-01-31T12:00:00Z")
	n := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		month := strings.TrimSuffix(d.Name(), ".rec")
		prev := int64(0)
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			n++
			parts := strings.Split(sc.Text(), "\t")
			if len(parts) != 3 {
				t.Fatalf("%s: line %q has not three columns", path, sc.Text())
			}
			stamp, topic, payload := parts[0], parts[1], parts[2]
			if len(topic) != 18 || strings.TrimSpace(topic) != "*" || !strings.HasPrefix(stamp, month) {
				t.Fatalf("%s: line %q is not <time of %s> TAB <* padded to 18> TAB <payload>", path, sc.Text(), month)
			}
			if len(payload) < 170 || len(payload) > 240 {
				t.Fatalf("payload is %d bytes, want about 200: %s", len(payload), payload)
			}
			m, err := recorder.Parse("owntracks/user0/dev0", []byte(payload), time.Now())
			if err != nil || !m.IsLocation() {
				t.Fatalf("payload rejected (%v) or not a location: %s", err, payload)
			}
			if at, err := time.Parse(time.RFC3339, stamp); err != nil || at.Unix() != m.TST {
				t.Fatalf("time column %s is not the payload's tst %d", stamp, m.TST)
			}
			if prev != 0 && (m.TST-prev < 13 || m.TST-prev > 39) {
				t.Fatalf("fixes %d s apart, want 13–39", m.TST-prev)
			}
			prev = m.TST
		}
		return sc.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 5000 {
		t.Fatalf("%d lines, want 5000", n)
	}
}

// TestDeterministic checks that the same flags write the same files,
// however many devices are written at once.
func TestDeterministic(t *testing.T) {
	sum := func(dir string) map[string][32]byte {
		out := map[string][32]byte{}
		filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				b, _ := os.ReadFile(path)
				rel, _ := filepath.Rel(dir, path)
				out[rel] = sha256.Sum256(b)
			}
			return err
		})
		return out
	}
	a := sum(generateStore(t, "-points", "2000", "-devices", "5", "-workers", "1"))
	b := sum(generateStore(t, "-points", "2000", "-devices", "5", "-workers", "3"))
	c := sum(generateStore(t, "-points", "2000", "-devices", "5", "-seed", "2"))
	if len(a) != 5 || len(a) != len(b) {
		t.Fatalf("%d and %d files, want 5", len(a), len(b))
	}
	for name, h := range a {
		if b[name] != h {
			t.Errorf("%s differs between -workers 1 and 3", name)
		}
		if c[name] == h {
			t.Errorf("%s is the same with another -seed", name)
		}
	}
}
