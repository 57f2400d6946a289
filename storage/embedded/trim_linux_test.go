//go:build linux

package embedded

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/wherehouse/wherehouse/storage"
)

// rssFileKiB reads the file-backed part of this process's resident set.
func rssFileKiB(t *testing.T) int {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status")
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "RssFile:"); ok {
			n, _ := strconv.Atoi(strings.Fields(v)[0])
			return n
		}
	}
	t.Skip("no RssFile in /proc/self/status")
	return 0
}

func TestReleaseMemory(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.pack = packConfig{trigger: math.MaxInt} // loose records: the padding would pack to nothing
	const n = 40000
	for i := 0; i < n; i += 2000 {
		batch := make([]storage.Message, 2000)
		for j := range batch {
			tst := int64(1700000000 + i + j)
			batch[j] = storage.Message{User: "u", Device: "d", Type: "location", TST: tst, Topic: "owntracks/u/d",
				Payload: fmt.Appendf(nil, `{"_type":"location","lat":1,"lon":2,"tst":%d,"pad":"%s"}`, tst, strings.Repeat("x", 400))}
		}
		if _, err := s.Append(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	walk := func() int {
		count := 0
		err := s.Locations(ctx, storage.LocationQuery{User: "u", Device: "d", From: 0, To: 1 << 40}, func(*storage.Message) error {
			count++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return count
	}
	walk()
	before := rssFileKiB(t)
	if err := s.ReleaseMemory(); err != nil {
		t.Fatal(err)
	}
	after := rssFileKiB(t)
	t.Logf("RssFile %d KiB -> %d KiB", before, after)
	if before-after < 8*1024 {
		t.Errorf("ReleaseMemory freed %d KiB of a ~%d KiB history, want most of it", before-after, n*450/1024)
	}
	// Everything is still there and readable.
	if got := walk(); got != n {
		t.Fatalf("after release: %d points, want %d", got, n)
	}
}
