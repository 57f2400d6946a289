package importer_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wherehouse/wherehouse/importer"
)

func TestPlan(t *testing.T) {
	root := t.TempDir()
	for _, rel := range []string{
		"store/rec/alice/phone/2024-05.rec", "store/rec/alice/phone/2024-04.rec", "store/rec/alice/phone/notes.txt",
		"store/last/alice/phone/alice-phone.json", "store/cards/alice/alice.json",
		"store/waypoints/alice/phone/alice-phone.otrw", "store/waypoints/alice/phone/2024-05-01T10:00:00Z.json",
		"store/rec/bob/watch/2024-05.rec", "store/ghash/u3/u33dc0.json",
		"gpx/b.gpx", "gpx/a.gpx", "gpx/.hidden",
	} {
		p := filepath.Join(root, filepath.FromSlash(rel))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte("x"), 0o644)
	}
	list := func(items []importer.Item) string {
		var out []string
		for _, it := range items {
			out = append(out, it.Name+"="+it.Format+"@"+it.User+"/"+it.Device)
		}
		return strings.Join(out, " ")
	}
	for _, tc := range []struct {
		name  string
		paths []string
		f     importer.Filter
		want  string
	}{
		{"store", []string{"store"}, importer.Filter{},
			"cards/alice/alice.json=card@alice/phone waypoints/alice/phone/alice-phone.otrw=waypoints@alice/phone " +
				"rec/alice/phone/2024-04.rec=rec@alice/phone rec/alice/phone/2024-05.rec=rec@alice/phone " +
				"last/alice/phone/alice-phone.json=last@alice/phone rec/bob/watch/2024-05.rec=rec@bob/watch"},
		{"its rec/", []string{"store/rec"}, importer.Filter{User: "Bob"}, "rec/bob/watch/2024-05.rec=rec@bob/watch"},
		{"one .rec", []string{"store/rec/bob/watch/2024-05.rec"}, importer.Filter{}, "2024-05.rec=rec@bob/watch"},
		{"one .rec, owner given", []string{"store/rec/bob/watch/2024-05.rec"}, importer.Filter{User: "carl", Device: "x"}, "2024-05.rec=rec@carl/x"},
		{"a directory", []string{"gpx"}, importer.Filter{User: "u", Device: "d"}, "a.gpx=gpx@u/d b.gpx=gpx@u/d"},
		{"stdin", []string{"-"}, importer.Filter{Format: "google", User: "u", Device: "d"}, "stdin=takeout@u/d"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			paths := make([]string, len(tc.paths))
			for i, p := range tc.paths {
				if p != "-" {
					p = filepath.Join(root, filepath.FromSlash(p))
				}
				paths[i] = p
			}
			items, err := importer.Plan(paths, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			if got := list(items); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
	if _, err := importer.Plan([]string{filepath.Join(root, "missing")}, importer.Filter{}); err == nil {
		t.Error("a missing path is no error")
	}
	if _, err := importer.Plan([]string{"-"}, importer.Filter{Format: "kml"}); err == nil {
		t.Error("an unknown format is no error")
	}
}
