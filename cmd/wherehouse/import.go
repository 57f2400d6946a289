package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/wherehouse/wherehouse/events"
	"github.com/wherehouse/wherehouse/importer"
	"github.com/wherehouse/wherehouse/recorder"
	"github.com/wherehouse/wherehouse/storage"
	"github.com/wherehouse/wherehouse/storage/embedded"
)

// progressEvery is how often the progress line is redrawn.
const progressEvery = 250 * time.Millisecond

// importTarget imports one file: an importer on the store opened here, or
// the running server through its control socket.
type importTarget interface {
	Import(ctx context.Context, r io.Reader, src importer.Source, opts importer.RunOptions) (importer.Summary, error)
}

// importGCPercent is the garbage collector's target for "wherehouse import".
const importGCPercent = 300

func runImport(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("import", "wherehouse import [flags] PATH...\n\n"+
		"PATH is a Recorder store directory (or its rec/), .rec files, GPX, GeoJSON, OwnTracks JSON\n"+
		"lines, or Google location history (Records.json, Semantic Location History, Timeline.json);\n"+
		"- reads standard input.\n"+
		"Importing again stores nothing twice, so an interrupted import is finished by running it again.", stderr)
	data := fs.String("data", DefaultData, "data directory")
	format := fs.String("format", "", "format of the files (default: detected): "+strings.Join(importer.Formats, ", "))
	user := fs.String("user", "", "whose data it is: needed for GPX, GeoJSON, Google and .rec files outside rec/<user>/<device>/; picks one user out of a Recorder store")
	device := fs.String("device", "", "the device, as --user")
	progress := fs.Bool("progress", false, "show progress on stderr even when it is not a terminal")
	verbose := fs.Bool("verbose", false, "list every skipped line, not only the first few per reason")
	paths, err := parseWithPositional(fs, args)
	if os.Getenv("GOGC") == "" {
		// An import allocates fast and keeps little: collecting garbage
		// a third as often makes it 10-15% faster for ~100 MB more peak
		// memory. GOGC in the environment still wins.
		debug.SetGCPercent(importGCPercent)
	}
	if err != nil {
		return err
	}
	if len(paths) == 0 {
		fs.Usage()
		return errors.New("name what to import: a Recorder store directory, .rec, GPX, GeoJSON, JSON lines or Google location history files (- for standard input)")
	}
	items, err := importer.Plan(paths, importer.Filter{Format: *format, User: *user, Device: *device})
	if err != nil {
		return err
	}
	if len(items) == 0 {
		return fmt.Errorf("nothing to import in %s", strings.Join(paths, " "))
	}
	target, closeTarget, err := openImport(ctx, *data)
	if err != nil {
		return err
	}
	examples := importer.DefaultExamples
	if *verbose {
		examples = -1
	}
	show := *progress || isTerminal(stderr)
	sum, failed, err := importAll(ctx, target, items, stdin, examples, newProgressLine(stderr, show, items))
	if cerr := closeTarget(); cerr != nil && err == nil {
		err = cerr
	}
	printSummary(stdout, sum, *verbose)
	switch {
	case err != nil && ctx.Err() != nil:
		return fmt.Errorf("interrupted: %w (what was stored stays; run the same command again to finish, nothing is stored twice)", ctx.Err())
	case err != nil:
		return err
	case failed > 0:
		return fmt.Errorf("%d of %d files could not be imported (see above); the rest is stored", failed, len(items))
	}
	return nil
}

// openImport talks to the running server over its control socket, or,
// when none runs, opens the store itself.
func openImport(ctx context.Context, dataDir string) (importTarget, func() error, error) {
	sock := filepath.Join(dataDir, socketFile)
	if controlRunning(sock) {
		return newControlClient(sock), func() error { return nil }, nil
	}
	log := slog.New(slog.DiscardHandler)
	store, err := embedded.Open(ctx, dataDir, log)
	if errors.Is(err, storage.ErrLocked) {
		return nil, nil, fmt.Errorf("%w, but its control socket %s does not answer; is it still starting? try again", err, sock)
	}
	if err != nil {
		return nil, nil, err
	}
	tracker := recorder.NewDeviceTracker(store, log)
	return importer.New(store, importer.Options{
		Observe: tracker.Observe,
		Imported: func(ctx context.Context, newest map[[2]string]int64) error {
			return events.SkipImportedInStore(ctx, store, newest)
		},
	}), store.Close, nil
}

// importAll imports the items in order. A file that is not what it
// claims to be is reported and passed over (failed counts them); reading
// and store errors stop everything.
func importAll(ctx context.Context, target importTarget, items []importer.Item, stdin io.Reader, examples int, pl *progressLine) (importer.Summary, int, error) {
	var sum importer.Summary
	failed := 0
	defer pl.finish()
	for _, it := range items {
		r := stdin
		if it.Path != "-" {
			f, err := os.Open(it.Path)
			if err != nil {
				return sum, failed, err
			}
			r = f
		}
		s, err := target.Import(ctx, r, it.Source, importer.RunOptions{Examples: examples, Progress: pl.update})
		if c, ok := r.(io.Closer); ok && it.Path != "-" {
			c.Close()
		}
		sum.Add(s, examples)
		pl.fileDone(s)
		if errors.Is(err, importer.ErrInput) {
			pl.clear()
			fmt.Fprintf(pl.w, "wherehouse: %v\n", err)
			failed++
			continue
		}
		if err != nil {
			return sum, failed, err
		}
	}
	return sum, failed, nil
}

// printSummary writes what was imported and what was skipped, and why.
func printSummary(w io.Writer, s importer.Summary, verbose bool) {
	fmt.Fprintf(w, "imported %d messages (%d new, %d already there), skipped %d lines\n", s.Messages, s.New, s.Existing, s.Skipped)
	if s.Skipped == 0 {
		return
	}
	fmt.Fprintln(w, "skipped lines by reason:")
	for _, k := range s.Skips {
		fmt.Fprintf(w, "  %s: %d (%s)\n", k.Reason, k.Count, k.Detail)
		more := ""
		if n := k.Count - int64(len(k.Where)); n > 0 {
			more = fmt.Sprintf(" and %d more", n)
		}
		fmt.Fprintf(w, "    at %s%s\n", strings.Join(k.Where, ", "), more)
	}
	hint := " (--verbose lists them all)"
	if verbose {
		hint = ""
	}
	fmt.Fprintf(w, "skipped lines are left out; everything else is stored, and the import counts as done%s\n", hint)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progressLine draws "bytes done of total, messages, rate, ETA" on one
// line, redrawn with \r at most every progressEvery.
type progressLine struct {
	w     io.Writer
	show  bool
	total int64 // bytes of all files; 0 when unknown (standard input)
	start time.Time

	mu        sync.Mutex
	doneBytes int64 // of the files finished
	doneMsgs  int64
	last      time.Time
	width     int // of the line drawn, to blank it
}

func newProgressLine(w io.Writer, show bool, items []importer.Item) *progressLine {
	pl := &progressLine{w: w, show: show, start: time.Now()}
	for _, it := range items {
		if it.Path == "-" {
			pl.total = 0
			break
		}
		pl.total += it.Size
	}
	return pl
}

// update is the importer's progress callback for the current file.
func (pl *progressLine) update(p importer.Progress) {
	if !pl.show {
		return
	}
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if time.Since(pl.last) < progressEvery {
		return
	}
	pl.last = time.Now()
	pl.draw(pl.doneBytes+p.Bytes, pl.doneMsgs+p.Messages, false)
}

// fileDone adds a finished file's counts.
func (pl *progressLine) fileDone(s importer.Summary) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	pl.doneBytes += s.Bytes
	pl.doneMsgs += s.Messages
}

func (pl *progressLine) draw(bytes, msgs int64, final bool) {
	took := time.Since(pl.start)
	elapsed := took.Seconds()
	line := mib(bytes)
	if pl.total > 0 {
		line += fmt.Sprintf(" of %s (%d%%)", mib(pl.total), min(100, bytes*100/max(1, pl.total)))
	}
	line += fmt.Sprintf(", %d messages", msgs)
	if final {
		line += fmt.Sprintf(", %.0f/s, took %s", float64(msgs)/elapsed, took.Round(100*time.Millisecond))
	} else if elapsed > 0.5 {
		line += fmt.Sprintf(", %.0f/s", float64(msgs)/elapsed)
		if pl.total > 0 && bytes > 0 && bytes < pl.total {
			eta := time.Duration(float64(pl.total-bytes) / (float64(bytes) / elapsed) * float64(time.Second))
			line += ", ETA " + eta.Round(time.Second).String()
		}
	}
	pad := max(0, pl.width-len(line))
	pl.width = len(line)
	fmt.Fprintf(pl.w, "\r%s%s", line, strings.Repeat(" ", pad))
}

// clear blanks the line so other output starts on a clean line.
func (pl *progressLine) clear() {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if pl.show && pl.width > 0 {
		fmt.Fprintf(pl.w, "\r%s\r", strings.Repeat(" ", pl.width))
		pl.width = 0
	}
}

// finish draws the final state and ends the line.
func (pl *progressLine) finish() {
	if !pl.show {
		return
	}
	pl.mu.Lock()
	defer pl.mu.Unlock()
	pl.draw(pl.doneBytes, pl.doneMsgs, true)
	fmt.Fprintln(pl.w)
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
