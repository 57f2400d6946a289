package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// maxLine is the longest .rec line read; the Recorder's buffer is 8 KiB.
const maxLine = 1 << 20

// timeLayouts are the forms -from and -to take, in UTC, as the Recorder's
// str_time_to_secs; RFC 3339 is tried first.
var timeLayouts = []string{"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02T15", "2006-01-02", "2006-01"}

type config struct {
	Dir, User, Device string
	From, To          time.Time
}

func main() {
	err := run(os.Args[1:], os.Stdout, os.Stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "recscan:", err)
		}
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	var cfg config
	var from, to string
	fs := flag.NewFlagSet("recscan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Dir, "dir", "", "Recorder store directory (the one holding rec/)")
	fs.StringVar(&cfg.User, "user", "", "user")
	fs.StringVar(&cfg.Device, "device", "", "device")
	fs.StringVar(&from, "from", "", "start of the range, UTC (2006-01-02T15:04:05, shorter forms, or RFC 3339)")
	fs.StringVar(&to, "to", "", "end of the range, inclusive, as -from")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q; all settings are flags (see -h)", fs.Args())
	}
	if cfg.Dir == "" || cfg.User == "" || cfg.Device == "" || from == "" || to == "" {
		return errors.New("-dir, -user, -device, -from and -to are all needed")
	}
	var err error
	if cfg.From, err = parseTime(from); err != nil {
		return fmt.Errorf("-from: %w", err)
	}
	if cfg.To, err = parseTime(to); err != nil {
		return fmt.Errorf("-to: %w", err)
	}
	t0 := time.Now()
	out := &countingWriter{w: stdout}
	n, err := scan(cfg, out)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "RESULT count=%d bytes=%d seconds=%.3f\n", n, out.n, time.Since(t0).Seconds())
	return nil
}

func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time such as 2025-01-31T23:59:59", s)
}

// answer is the Recorder's json answer of /api/0/locations, while it
// is being built: the locations kept so far.
type answer struct {
	data []node
}

// scan writes the answer for cfg's range and returns its count.
func scan(cfg config, w io.Writer) (int, error) {
	files, err := monthFiles(cfg)
	if err != nil {
		return 0, err
	}
	var ans answer
	lo, hi := cfg.From.Unix(), cfg.To.Unix()
	for _, name := range files {
		if err := scanFile(name, lo, hi, &ans); err != nil {
			return 0, err
		}
	}
	// The whole answer is one string before any of it is sent, as the
	// Recorder's json_stringify of its result object.
	obj := node{kind: '{', kids: []node{
		{kind: '0', key: "count", num: float64(len(ans.data))},
		{kind: '[', key: "data", kids: ans.data},
		{kind: '0', key: "status", num: 200},
	}}
	out := append(appendJSON(nil, &obj), '\n')
	_, err = w.Write(out)
	return len(ans.data), err
}

// monthFiles returns the device's YYYY-MM.rec files whose month overlaps
// the range, in order (storage.c lsscan and filter_filename).
func monthFiles(cfg config) ([]string, error) {
	dir := filepath.Join(cfg.Dir, "rec", cfg.User, cfg.Device)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	months := func(t time.Time) int { return t.Year()*12 + int(t.Month()) - 1 }
	lo, hi := months(cfg.From.UTC()), months(cfg.To.UTC())
	var files []string
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".rec") {
			continue
		}
		t, err := time.Parse("2006-01", strings.TrimSuffix(name, ".rec"))
		if err != nil {
			continue
		}
		if m := months(t); m >= lo && m <= hi {
			files = append(files, filepath.Join(dir, name))
		}
	}
	slices.Sort(files)
	return files, nil
}

// scanFile adds the file's locations in [lo, hi] to ans (storage.c
// candidate_line and line_to_location).
func scanFile(name string, lo, hi int64, ans *answer) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) < 20 {
			continue
		}
		at, err := time.Parse("2006-01-02T15:04:05Z", string(line[:20]))
		if err != nil {
			continue
		}
		if secs := at.Unix(); secs < lo || secs > hi {
			continue
		}
		i := bytes.Index(line, []byte("Z\t* "))
		if i < 0 {
			continue // not a location line (lwt, event, ...)
		}
		j := bytes.LastIndexByte(line[i:], '\t')
		obj, err := decode(line[i+j+1:])
		if err != nil || obj.kind != '{' {
			continue
		}
		if t := obj.member("_type"); t == nil || t.kind != '"' || t.str != "location" {
			continue
		}
		obj.set("isorcv", node{kind: '"', str: string(line[:20])})
		var tst int64
		if t := obj.member("tst"); t != nil && t.kind == '0' {
			tst = int64(t.num)
		}
		ts := time.Unix(tst, 0).UTC()
		obj.set("isotst", node{kind: '"', str: ts.Format("2006-01-02T15:04:05Z")})
		obj.set("disptst", node{kind: '"', str: ts.Format("2006-01-02 15:04:05")})
		ans.data = append(ans.data, obj)
	}
	return sc.Err()
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
