package api

import (
	"context"
	"io"
	"strconv"

	"github.com/wherehouse/wherehouse/storage"
)

// locationScanner is a store that hands out locations for rendering
// without copying them (storage/embedded): fn runs inside a read
// transaction, must not block and must not keep the message; flush runs
// between transactions and is where output goes to the client.
type locationScanner interface {
	ScanLocations(ctx context.Context, q storage.LocationQuery, fn func(*storage.Message) error, flush func() error) error
}

// renderFlushAt is how much rendered output is gathered before it is
// written, when the store hands out locations one by one: large writes
// mean few chunks and system calls for a month of points.
const renderFlushAt = 64 << 10

// trackRenderer renders the body of /api/0/locations into a buffer that
// its caller writes out between store reads.
type trackRenderer struct {
	geo   bool
	only  map[string]bool // fields= for json
	buf   []byte
	count int
	times timeScratch
}

func newTrackRenderer(format string, only map[string]bool) *trackRenderer {
	r := &trackRenderer{geo: format == formatGeoJSON, only: only, buf: make([]byte, 0, renderFlushAt+4<<10)}
	if r.geo {
		r.buf = append(r.buf, `{"type":"FeatureCollection","features":[`...)
	} else {
		r.buf = append(r.buf, `{"data":[`...)
	}
	return r
}

// add renders one location.
func (r *trackRenderer) add(m *storage.Message) {
	if r.count > 0 {
		r.buf = append(r.buf, ',')
	}
	if r.geo {
		r.buf = r.times.tst.appendFeature(r.buf, m)
	} else {
		r.buf = appendObject(r.buf, m.Payload, r.times.fields(m), r.only)
	}
	r.count++
}

// end renders what follows the last location.
func (r *trackRenderer) end(version string) {
	if r.geo {
		r.buf = append(r.buf, `]}`...)
		return
	}
	r.buf = append(r.buf, `],"count":`...)
	r.buf = strconv.AppendInt(r.buf, int64(r.count), 10)
	r.buf = append(r.buf, `,"status":200,"version":`...)
	r.buf = strconv.AppendQuote(r.buf, version)
	r.buf = append(r.buf, '}')
}

// endPage is end for a page of an area query: it adds "next", the
// cursor of the following page, when there is one.
func (r *trackRenderer) endPage(version string, next *storage.AreaCursor) {
	if next == nil {
		r.end(version)
		return
	}
	r.buf = append(r.buf, `],"next":`...)
	r.buf = strconv.AppendQuote(r.buf, encodeCursor(next))
	if r.geo {
		r.buf = append(r.buf, '}')
		return
	}
	r.buf = append(r.buf, `,"count":`...)
	r.buf = strconv.AppendInt(r.buf, int64(r.count), 10)
	r.buf = append(r.buf, `,"status":200,"version":`...)
	r.buf = strconv.AppendQuote(r.buf, version)
	r.buf = append(r.buf, '}')
}

// flush writes out what has been rendered.
func (r *trackRenderer) flush(w io.Writer) error {
	if len(r.buf) == 0 {
		return nil
	}
	_, err := w.Write(r.buf)
	r.buf = r.buf[:0]
	return err
}
