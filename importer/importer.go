package importer

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/wherehouse/wherehouse/recorder"
	"github.com/wherehouse/wherehouse/storage"
)

// Formats an import reads (Source.Format). FormatCard, FormatWaypoints and
// FormatLast are single files of a Recorder store; Plan finds them.
const (
	FormatRec       = "rec"       // Recorder .rec lines: time, topic, payload
	FormatOwnTracks = "owntracks" // OwnTracks payloads: JSON lines (optionally "topic payload"), or a JSON array
	FormatGPX       = "gpx"       // GPX 1.0/1.1 track, route and way points
	FormatGeoJSON   = "geojson"   // GeoJSON Points (and LineStrings with coordinate times)
	FormatTakeout   = "takeout"   // Google location history: Records.json, Semantic Location History, Timeline.json, the iOS export
	FormatCard      = "card"      // a Recorder cards/ file
	FormatWaypoints = "waypoints" // a Recorder waypoints/ .otrw file
	FormatLast      = "last"      // a Recorder last/ file
)

// Formats are the formats a user may name; the others are found by Plan.
var Formats = []string{FormatRec, FormatOwnTracks, FormatGPX, FormatGeoJSON, FormatTakeout}

// formatAliases are other names users give formats.
var formatAliases = map[string]string{
	"recorder": FormatRec, "json": FormatOwnTracks, "jsonl": FormatOwnTracks, "ndjson": FormatOwnTracks,
	"google": FormatTakeout, "timeline": FormatTakeout, "records": FormatTakeout,
}

// NormalizeFormat returns the canonical name of a format ("" for "detect
// it"), or an error naming the known ones.
func NormalizeFormat(f string) (string, error) {
	f = strings.ToLower(strings.TrimSpace(f))
	if a, ok := formatAliases[f]; ok {
		return a, nil
	}
	switch f {
	case "", "auto", "detect":
		return "", nil
	case FormatRec, FormatOwnTracks, FormatGPX, FormatGeoJSON, FormatTakeout, FormatCard, FormatWaypoints, FormatLast:
		return f, nil
	}
	return "", inputError("unknown format %q: use one of %s", f, strings.Join(Formats, ", "))
}

// ErrInput matches every problem with what is imported, rather than with
// the store: an unknown format, a missing user, a file that is not what it
// claims to be. Messages before the problem are stored.
var ErrInput = errors.New("bad import input")

// inputError is an error matching ErrInput, with only its own text.
type inputErr struct{ msg string }

func (e *inputErr) Error() string        { return e.msg }
func (e *inputErr) Is(target error) bool { return target == ErrInput }

func inputError(format string, args ...any) error {
	return &inputErr{fmt.Sprintf(format, args...)}
}

// InputError returns an error with text that matches ErrInput: how a
// client restores an input error a server reported.
func InputError(text string) error { return &inputErr{text} }

// Skip reasons of the importer itself; a message the strict parser rejects
// is skipped with the recorder.Reason* of its RejectError.
const (
	ReasonLine        = "line"        // not a line of the file's format
	ReasonTime        = "time"        // no time, or one that cannot be read
	ReasonCoordinates = "coordinates" // no position, or one out of range
)

// Defaults for Options and RunOptions.
const (
	// DefaultBatch is how many messages go into one store transaction:
	// large enough that the commit's fsync costs little per message.
	DefaultBatch = 10_000
	// DefaultExamples is how many positions a summary keeps per skip reason.
	DefaultExamples = 5
	// arenaSize is the payload memory a batch starts with.
	arenaSize = 4 << 20
	// readBuffer is the read buffer of a source.
	readBuffer = 256 << 10
)

// Store is what an import writes to and reads last positions from
// (storage.Messages and storage.Last, in part).
type Store interface {
	Append(ctx context.Context, msgs []storage.Message) (dup []bool, err error)
	LastLocations(ctx context.Context, user, device string) ([]storage.Message, error)
}

// Options configure an Importer.
type Options struct {
	Batch int // messages per transaction; DefaultBatch when 0
	// Observe is told about the messages of each batch that can change
	// device state (see observed); it is recorder.DeviceTracker.Observe.
	Observe recorder.Observer
	// Live, when set, is told a device's newest imported location when it
	// becomes the device's last position, so open maps move at once.
	Live *recorder.Live
	// Imported, when set, is told after each batch the newest tst per
	// user/device of the messages the fence engine evaluates, so the
	// engine moves its watermarks past them and imported history never
	// fires events (events.Engine.SkipImported, events.SkipImportedInStore).
	// An error stops the import like a store error.
	Imported func(ctx context.Context, newest map[[2]string]int64) error
}

// Importer stores what sources hold. It is safe for concurrent use; each
// Import is independent.
type Importer struct {
	store Store
	opts  Options
}

// New returns an importer writing to store.
func New(store Store, opts Options) *Importer {
	if opts.Batch <= 0 {
		opts.Batch = DefaultBatch
	}
	return &Importer{store: store, opts: opts}
}

// Source describes one input.
type Source struct {
	Name    string    // shown in reports; also used to detect the format
	Format  string    // one of the Format constants; "" to detect it
	User    string    // whose data: needed for all but "topic payload" lines
	Device  string    // likewise
	Size    int64     // bytes, for progress; 0 when unknown
	ModTime time.Time // arrival time of messages that carry no time of their own
}

// RunOptions tune one Import.
type RunOptions struct {
	Examples int            // positions kept per skip reason; DefaultExamples when 0, all when < 0
	Progress func(Progress) // called after each batch from another goroutine; may be nil
}

// Progress is how far one Import has come.
type Progress struct {
	Bytes    int64 `json:"bytes"`    // read from the source
	Messages int64 `json:"messages"` // valid messages read
	New      int64 `json:"new"`      // of them stored
	Existing int64 `json:"existing"` // of them already in the store
	Skipped  int64 `json:"skipped"`  // lines or records left out
}

// Summary is the outcome of one or more imports.
type Summary struct {
	Files    int     `json:"files"`
	Bytes    int64   `json:"bytes"`
	Messages int64   `json:"messages"` // valid messages read
	New      int64   `json:"new"`      // stored now
	Existing int64   `json:"existing"` // already there, not stored again
	Skipped  int64   `json:"skipped"`  // lines or records left out
	Skips    []Skips `json:"skips,omitempty"`
}

// Skips are the skipped lines of one reason. A position is "name:N" for
// line N of a file, or "name#N" for its N-th record (JSON, GPX).
type Skips struct {
	Reason string   `json:"reason"`
	Count  int64    `json:"count"`
	Detail string   `json:"detail"` // what was wrong with the first one
	Where  []string `json:"where"`  // the first few positions
}

// Add merges o into s, keeping at most examples positions per reason
// (all when examples < 0).
func (s *Summary) Add(o Summary, examples int) {
	s.Files += o.Files
	s.Bytes += o.Bytes
	s.Messages += o.Messages
	s.New += o.New
	s.Existing += o.Existing
	s.Skipped += o.Skipped
	for _, k := range o.Skips {
		i := s.skips(k.Reason, k.Detail)
		s.Skips[i].Count += k.Count
		for _, w := range k.Where {
			if examples >= 0 && len(s.Skips[i].Where) >= examples {
				break
			}
			s.Skips[i].Where = append(s.Skips[i].Where, w)
		}
	}
}

// skips returns the index of reason's entry, adding it when new.
func (s *Summary) skips(reason, detail string) int {
	for i := range s.Skips {
		if s.Skips[i].Reason == reason {
			return i
		}
	}
	s.Skips = append(s.Skips, Skips{Reason: reason, Detail: detail, Where: []string{}})
	return len(s.Skips) - 1
}

// Import reads src from r and stores its messages. Lines it cannot use are
// skipped and counted in the summary; the error is for what stops the
// import: the store failing, reading failing, or input that is not in its
// format at all (wrapping ErrInput). What was stored before stays.
func (im *Importer) Import(ctx context.Context, r io.Reader, src Source, opts RunOptions) (Summary, error) {
	if opts.Examples == 0 {
		opts.Examples = DefaultExamples
	}
	if src.Name == "" {
		src.Name = "input"
	}
	// Errors before the import begins name the source like those after.
	fail := func(err error) (Summary, error) { return Summary{Files: 1}, fmt.Errorf("%s: %w", src.Name, err) }
	var err error
	if src.Format, err = NormalizeFormat(src.Format); err != nil {
		return fail(err)
	}
	src.User, src.Device = strings.ToLower(src.User), strings.ToLower(src.Device)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	cr := &countingReader{r: r, ctx: ctx}
	br := bufio.NewReaderSize(cr, readBuffer)
	if src.Format == "" {
		head, _ := br.Peek(sniffSize)
		if src.Format = Detect(src.Name, head); src.Format == "" {
			return fail(inputError("cannot tell the format: name it with --format (%s)", strings.Join(Formats, ", ")))
		}
	}
	parse := parsers[src.Format]
	if needsOwner(src.Format) && (src.User == "" || src.Device == "") {
		return fail(inputError("%s holds no user or device: say whose data it is with --user and --device", describe(src.Format)))
	}

	run := newRun(ctx, cancel, im, src, cr, opts)
	werr := make(chan error, 1)
	go func() { werr <- run.write() }()
	perr := parse(run, br)
	// What was read before a problem is stored, as it would have been
	// had the problem come later.
	if err := run.flush(); err != nil && perr == nil {
		perr = err
	}
	close(run.batches)
	if err := <-werr; err != nil {
		perr = err // the store's failure is why the parser stopped
	}
	sum := run.summary()
	if opts.Progress != nil {
		opts.Progress(run.progress())
	}
	if perr != nil {
		return sum, fmt.Errorf("%s: %w", src.Name, perr)
	}
	return sum, nil
}

// needsOwner reports whether a format's messages carry no user and device.
func needsOwner(format string) bool { return format != FormatOwnTracks }

func describe(format string) string {
	switch format {
	case FormatRec, FormatCard, FormatWaypoints, FormatLast:
		return "a Recorder file outside rec/<user>/<device>/"
	case FormatGPX:
		return "a GPX file"
	case FormatGeoJSON:
		return "a GeoJSON file"
	case FormatTakeout:
		return "Google location history"
	}
	return format
}

// parsers read one format, handing messages and skips to the run.
var parsers = map[string]func(*run, *bufio.Reader) error{
	FormatRec:       readRec,
	FormatOwnTracks: readOwnTracks,
	FormatGPX:       readGPX,
	FormatGeoJSON:   readGeoJSON,
	FormatTakeout:   readTakeout,
	FormatCard:      readCard,
	FormatWaypoints: readWaypoints,
	FormatLast:      readLast,
}

// countingReader counts the bytes read through it, for progress, and
// stops reading once ctx ends (a parser skipping line after line would
// otherwise read on).
type countingReader struct {
	r   io.Reader
	ctx context.Context
	n   atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, context.Cause(c.ctx)
	}
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}
