package importer

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wherehouse/wherehouse/recorder"
	"github.com/wherehouse/wherehouse/storage"
)

// memStore keeps appended messages in memory, for the fuzz targets.
type memStore struct{ msgs []storage.Message }

func (s *memStore) Append(_ context.Context, msgs []storage.Message) ([]bool, error) {
	for _, m := range msgs {
		m.Payload = bytes.Clone(m.Payload)
		s.msgs = append(s.msgs, m)
	}
	return make([]bool, len(msgs)), nil
}

func (s *memStore) LastLocations(context.Context, string, string) ([]storage.Message, error) {
	return nil, nil
}

// fuzzImport imports input as format and checks the invariants of any
// import: it ends, every stored message is one the strict parser accepts,
// and every message read is counted once.
func fuzzImport(t *testing.T, format string, input []byte) {
	store := &memStore{}
	im := New(store, Options{Batch: 7})
	sum, err := im.Import(context.Background(), bytes.NewReader(input),
		Source{Name: "fuzz", Format: format, User: "alice", Device: "phone", ModTime: time.Unix(1714521600, 0)}, RunOptions{})
	if err != nil && !errors.Is(err, ErrInput) {
		t.Fatalf("error %v does not match ErrInput", err)
	}
	if int64(len(store.msgs)) != sum.Messages || sum.New != sum.Messages {
		t.Fatalf("%d stored, summary %+v", len(store.msgs), sum)
	}
	var skipped int64
	for _, k := range sum.Skips {
		skipped += k.Count
	}
	if skipped != sum.Skipped {
		t.Fatalf("skips add up to %d, skipped %d", skipped, sum.Skipped)
	}
	for _, m := range store.msgs {
		again, err := recorder.Parse(m.Topic, m.Payload, time.UnixMilli(m.Received))
		if err != nil {
			t.Fatalf("stored %s which the parser rejects: %v", m.Payload, err)
		}
		if again.User != "alice" || again.Device != "phone" || m.Transport != recorder.TransportImport {
			t.Fatalf("stored for %s/%s by %q", again.User, again.Device, m.Transport)
		}
	}
}

// seeds adds the named testdata files to the corpus (beside the edge
// cases in testdata/fuzz/<target>, which go test reads itself).
func seeds(f *testing.F, files ...string) {
	for _, n := range files {
		b, err := os.ReadFile(filepath.Join("testdata", n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzRecLine checks the .rec reader on any input: the split of a line,
// its time and its topic, and the import of what it yields.
func FuzzRecLine(f *testing.F) {
	seeds(f, "2024-05.rec")
	f.Fuzz(func(t *testing.T, input []byte) {
		for line := range bytes.SplitSeq(input, []byte("\n")) {
			stamp, rel, payload, ok := splitRecLine(line)
			if !ok {
				continue
			}
			if len(stamp)+len(payload) > len(line) || bytes.ContainsAny(stamp, "\t") {
				t.Fatalf("split %q into %q %q %q", line, stamp, rel, payload)
			}
			if tm, ok := parseRecTime(stamp); ok && tm.Location() != time.UTC && len(stamp) == 20 {
				t.Fatalf("time %q not UTC", stamp)
			}
			_ = recTopic("owntracks/alice/phone", string(rel))
		}
		fuzzImport(t, FormatRec, input)
	})
}

// FuzzTakeout checks the Google location history reader (and the JSON
// streamer under it) on any input.
func FuzzTakeout(f *testing.F) {
	seeds(f, "Records.json", "Semantic-2019_JANUARY.json", "Timeline.json", "location-history.json")
	f.Fuzz(func(t *testing.T, input []byte) {
		fuzzImport(t, FormatTakeout, input)
	})
}
