package importer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/wherehouse/wherehouse/recorder"
)

// Besides rec/, an OwnTracks Recorder store (its STORAGEDIR) holds the
// newest of some messages in files named by user and device, lower-cased,
// spaces turned into dashes (pathn() and xx_dump() in recorder.c):
//
//	cards/<user>/<device>/<user>-<device>.json  the device's card, as received
//	cards/<user>/<user>.json                    older Recorders: one card per user
//	waypoints/<user>/<device>/<user>-<device>.otrw  the last "waypoints" set, pretty-printed
//	waypoints/<user>/<device>/<isotime>.json     each "waypoint" (also in rec/: not read)
//	last/<user>/<device>/<user>-<device>.json   the last location, plus topic, username,
//	                                            device and ghash added by the Recorder
//
// Cards and waypoint sets never reach the .rec files, so they are read from
// here; the last location is normally the newest .rec line and is read only
// when the store has nothing as new for the device.

// Filter is what the user said about an import: a format and an owner for
// files that need one, or to pick one user's (and device's) data out of a
// Recorder store.
type Filter struct {
	Format string
	User   string
	Device string
}

// Item is one file of an import.
type Item struct {
	Path string // "-" for standard input
	Source
}

// Plan expands the paths a user named into the files to import, in order.
// A Recorder store directory (one with rec/ or last/ in it, or its rec/
// itself) gives, per user and device, the card, the waypoint set, the .rec
// files by month and the last position; any other directory gives the
// files in it. Owners come from rec/<user>/<device>/ paths unless the
// filter names them.
func Plan(paths []string, f Filter) ([]Item, error) {
	var err error
	if f.Format, err = NormalizeFormat(f.Format); err != nil {
		return nil, err
	}
	f.User, f.Device = strings.ToLower(f.User), strings.ToLower(f.Device)
	var items []Item
	for _, p := range paths {
		if p == "-" {
			items = append(items, Item{Path: "-", Source: Source{Name: "stdin", Format: f.Format, User: f.User, Device: f.Device}})
			continue
		}
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			items = append(items, planFile(p, filepath.Base(p), st, f))
			continue
		}
		root := p
		if filepath.Base(filepath.Clean(p)) == "rec" && isStore(filepath.Dir(filepath.Clean(p))) {
			root = filepath.Dir(filepath.Clean(p))
		}
		var more []Item
		if isStore(root) {
			more, err = planStore(root, f)
		} else {
			more, err = planDir(p, f)
		}
		if err != nil {
			return nil, err
		}
		items = append(items, more...)
	}
	return items, nil
}

// isStore reports whether dir looks like a Recorder store.
func isStore(dir string) bool {
	for _, sub := range []string{"rec", "last"} {
		if st, err := os.Stat(filepath.Join(dir, sub)); err == nil && st.IsDir() {
			return true
		}
	}
	return false
}

// planFile is one named file: the format from the filter or the name, the
// owner from the filter or a rec/<user>/<device>/ path.
func planFile(path, name string, st os.FileInfo, f Filter) Item {
	it := Item{Path: path, Source: Source{Name: name, Format: f.Format, User: f.User, Device: f.Device, Size: st.Size(), ModTime: st.ModTime()}}
	if it.Format == "" {
		it.Format = byExtension[strings.ToLower(filepath.Ext(path))]
	}
	if it.User == "" || it.Device == "" {
		abs, err := filepath.Abs(path)
		if err != nil {
			abs = path
		}
		parts := strings.Split(filepath.ToSlash(abs), "/")
		if n := len(parts); n >= 4 && parts[n-4] == "rec" {
			if it.User == "" {
				it.User = strings.ToLower(parts[n-3])
			}
			if it.Device == "" {
				it.Device = strings.ToLower(parts[n-2])
			}
		}
	}
	return it
}

// planDir is every regular file under dir, in name order.
func planDir(dir string, f Filter) ([]Item, error) {
	var items []Item
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() || strings.HasPrefix(d.Name(), ".") {
			return nil
		}
		st, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			rel = d.Name()
		}
		items = append(items, planFile(p, filepath.ToSlash(rel), st, f))
		return nil
	})
	return items, err
}

// planStore lists a Recorder store's files per user and device.
func planStore(root string, f Filter) ([]Item, error) {
	users := subdirs(root, "rec", "last", "cards", "waypoints")
	var items []Item
	add := func(rel, format, user, device string) {
		p := filepath.Join(root, filepath.FromSlash(rel))
		st, err := os.Stat(p)
		if err != nil || !st.Mode().IsRegular() {
			return
		}
		items = append(items, Item{Path: p, Source: Source{
			Name: rel, Format: format, User: user, Device: device, Size: st.Size(), ModTime: st.ModTime(),
		}})
	}
	for _, u := range users {
		if f.User != "" && strings.ToLower(u) != f.User {
			continue
		}
		devices := subdirs(root, "rec/"+u, "last/"+u, "cards/"+u, "waypoints/"+u)
		for _, d := range devices {
			if f.Device != "" && strings.ToLower(d) != f.Device {
				continue
			}
			user, device := strings.ToLower(u), strings.ToLower(d)
			// Card and regions first: the device tracker takes an imported
			// card only while nothing newer has been seen of the device.
			card := "cards/" + u + "/" + d + "/" + u + "-" + d + ".json"
			if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(card))); err != nil {
				card = "cards/" + u + "/" + u + ".json"
			}
			add(card, FormatCard, user, device)
			add("waypoints/"+u+"/"+d+"/"+u+"-"+d+".otrw", FormatWaypoints, user, device)
			months, _ := filepath.Glob(filepath.Join(root, "rec", u, d, "*.rec"))
			slices.Sort(months)
			for _, m := range months {
				add("rec/"+u+"/"+d+"/"+filepath.Base(m), FormatRec, user, device)
			}
			add("last/"+u+"/"+d+"/"+u+"-"+d+".json", FormatLast, user, device)
		}
	}
	return items, nil
}

// subdirs returns the union of the directory names in root/<each of dirs>,
// sorted.
func subdirs(root string, dirs ...string) []string {
	seen := map[string]bool{}
	for _, d := range dirs {
		entries, err := os.ReadDir(filepath.Join(root, filepath.FromSlash(d)))
		if err != nil {
			continue
		}
		for _, e := range entries {
			if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
				seen[e.Name()] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// readWhole reads a small file: a card, a waypoint set, a last position.
// ok is false (and the file skipped) when it is over the payload limit.
func readWhole(r *run, br *bufio.Reader) ([]byte, bool, error) {
	b, err := io.ReadAll(io.LimitReader(br, recorder.MaxPayload+1))
	if err != nil {
		return nil, false, err
	}
	if len(b) > recorder.MaxPayload {
		r.skip(1, recorder.ReasonSize, "file is over the %d byte payload limit", recorder.MaxPayload)
		return nil, false, nil
	}
	return b, true, nil
}

// modTime is the arrival time given to a store file's message: its
// modification time, so importing it again gives the same message.
func (r *run) modTime() int64 {
	if r.src.ModTime.IsZero() {
		return 0
	}
	return r.src.ModTime.UnixMilli()
}

// readCard reads a cards/ file: one card, as the device published it.
func readCard(r *run, br *bufio.Reader) error {
	b, ok, err := readWhole(r, br)
	if !ok {
		return err
	}
	return r.message(r.base+"/info", b, r.modTime(), 1)
}

// readWaypoints reads a waypoints/ .otrw file: the device's last
// "waypoints" message, pretty-printed by the Recorder. It is compacted back
// (as the app sent it, and as an export's .rec line has it).
func readWaypoints(r *run, br *bufio.Reader) error {
	b, ok, err := readWhole(r, br)
	if !ok {
		return err
	}
	var compact bytes.Buffer
	if json.Compact(&compact, b) == nil {
		b = compact.Bytes()
	}
	return r.message(r.base+"/waypoints", b, r.modTime(), 1)
}

// recorderAdded are the members the Recorder adds to a last position.
var recorderAdded = []string{"topic", "username", "device", "ghash"}

// readLast reads a last/ file. The location is stored only when the store
// has nothing as new for the device: normally it is the newest .rec line,
// read already.
func readLast(r *run, br *bufio.Reader) error {
	b, ok, err := readWhole(r, br)
	if !ok {
		return err
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' || !gjson.ValidBytes(b) {
		return r.message(r.base, b, 0, 1) // let the parser say why
	}
	payload := withoutMembers(b, recorderAdded)
	tst := gjson.GetBytes(payload, "tst")
	if tst.Type == gjson.Number {
		last, err := r.im.store.LastLocations(r.ctx, r.src.User, r.src.Device)
		if err != nil {
			return err
		}
		if len(last) == 1 && last[0].TST >= tst.Int() {
			r.already()
			return nil
		}
	}
	return r.message(r.base, payload, 0, 1)
}

// withoutMembers returns a JSON object without the named top-level
// members, compact as the Recorder writes it.
func withoutMembers(obj []byte, names []string) []byte {
	out := make([]byte, 0, len(obj))
	out = append(out, '{')
	first := true
	gjson.ParseBytes(obj).ForEach(func(key, value gjson.Result) bool {
		if slices.Contains(names, key.Str) {
			return true
		}
		if !first {
			out = append(out, ',')
		}
		first = false
		out = append(out, key.Raw...)
		out = append(out, ':')
		out = append(out, value.Raw...)
		return true
	})
	return append(out, '}')
}
