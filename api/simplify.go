package api

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v5"

	"github.com/wherehouse/wherehouse/auth"
	"github.com/wherehouse/wherehouse/geo"
	"github.com/wherehouse/wherehouse/storage"
)

// pointsHeader tells how many of the range's points a simplified answer
// kept: "<kept>/<total>".
const pointsHeader = "X-Wherehouse-Points"

// simplifyOptions are simplify= (metres) and max_points= of
// /api/0/locations; on when either is given.
type simplifyOptions struct {
	on        bool
	tolerance float64
	maxPoints int // 0 for no bound
}

func (o simplifyOptions) active() bool { return o.on }

// simplifying reports whether the request asks for a simplified track.
func simplifying(c *echo.Context) bool {
	return param(c, "simplify") != "" || param(c, "max_points") != ""
}

func simplifyParams(c *echo.Context) (simplifyOptions, error) {
	var o simplifyOptions
	if v := param(c, "simplify"); v != "" {
		t, err := strconv.ParseFloat(v, 64)
		if err != nil || t < 0 || math.IsInf(t, 0) || math.IsNaN(t) {
			return o, fmt.Errorf("simplify must be a tolerance in metres, e.g. simplify=10")
		}
		o.tolerance, o.on = t, true
	}
	if v := param(c, "max_points"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 2 {
			return o, fmt.Errorf("max_points must be a whole number of at least 2")
		}
		o.maxPoints, o.on = n, true
	}
	return o, nil
}

// simplifiedLocations serves a simplified track in two passes over the
// store. The first keeps only each point's position and tst (24 bytes a
// point, not the payloads) and picks the points to keep; the second
// renders those as it reads them again. Kept points are found again by
// tst and their place among points of the same tst, so a point stored
// between the passes does not shift which ones are sent.
func (s *Server) simplifiedLocations(c *echo.Context, me storage.User, grant auth.Grant, q storage.LocationQuery,
	opts simplifyOptions, tw trackWriter) error {
	ctx := c.Request().Context()
	var tr track
	err := s.walkLocations(ctx, q, func(m *storage.Message) error {
		lat, lon := m.Lat, m.Lon
		if grant.Precision > 0 {
			// Simplify what the viewer may see, so which points are
			// kept tells nothing finer.
			lat, lon = geo.Coarsen(lat, lon, float64(grant.Precision))
		}
		tr.add(m.TST, lat, lon)
		return nil
	})
	if err != nil {
		return err
	}
	total := len(tr.tst)
	kept, err := tr.simplify(ctx, opts)
	if err != nil {
		return err
	}
	c.Response().Header().Set(pointsHeader, strconv.Itoa(len(kept))+"/"+strconv.Itoa(total))
	c.Response().WriteHeader(http.StatusOK)
	s.streamLocations(ctx, me, grant, kept.ranges(q), tw, c.Response(), kept.filter())
	return nil
}

// walkLocations calls fn for every location of q, which must not keep the
// message; it uses the store's copy-free walk where there is one.
func (s *Server) walkLocations(ctx context.Context, q storage.LocationQuery, fn func(*storage.Message) error) error {
	if sc, ok := s.Store.(locationScanner); ok {
		return sc.ScanLocations(ctx, q, fn, func() error { return nil })
	}
	return s.Store.Locations(ctx, q, fn)
}

// track is the first pass's copy of a track: positions in degrees, then,
// after project, in metres.
type track struct {
	tst  []int64
	x, y []float64 // lon, lat; then metres east and north
}

func (t *track) add(tst int64, lat, lon float64) {
	if len(t.tst) == cap(t.tst) {
		// Double: append's gentler growth for large slices copies a
		// year's points many times over.
		n := max(1024, 2*cap(t.tst))
		t.tst = append(make([]int64, 0, n), t.tst...)
		t.x = append(make([]float64, 0, n), t.x...)
		t.y = append(make([]float64, 0, n), t.y...)
	}
	t.tst = append(t.tst, tst)
	t.x = append(t.x, lon)
	t.y = append(t.y, lat)
}

// earthRadius is the mean radius of the Earth in metres (IUGG).
const earthRadius = 6371008.8

// project turns degrees into metres in place: equirectangular around the
// track's mean latitude, which is close enough at the scale of the
// tolerances asked for. Longitudes are unwrapped first, so a track across
// the antimeridian stays continuous.
func (t *track) project() {
	n := len(t.x)
	if n == 0 {
		return
	}
	var sumLat float64
	prev, shift := t.x[0], 0.0
	for i := range n {
		sumLat += t.y[i]
		lon := t.x[i]
		switch d := lon - prev; {
		case d > 180:
			shift -= 360
		case d < -180:
			shift += 360
		}
		prev = lon
		t.x[i] = lon + shift
	}
	lat0 := sumLat / float64(n)
	lon0 := t.x[0]
	k := earthRadius * math.Pi / 180
	kx := k * math.Cos(lat0*math.Pi/180)
	for i := range n {
		t.x[i] = (t.x[i] - lon0) * kx
		t.y[i] = (t.y[i] - lat0) * k
	}
}

// simplify returns the points to keep (see douglasPeucker).
func (t *track) simplify(ctx context.Context, opts simplifyOptions) (keptPoints, error) {
	t.project()
	idx, err := douglasPeucker(ctx, t.x, t.y, opts.tolerance, opts.maxPoints)
	if err != nil {
		return nil, err
	}
	// Name each kept point by its tst and its place among the points of
	// that tst (several messages may share one).
	kept := make(keptPoints, len(idx))
	for i, p := range idx {
		first := p
		for first > 0 && t.tst[first-1] == t.tst[p] {
			first--
		}
		kept[i] = keptPoint{tst: t.tst[p], nth: p - first, index: p}
	}
	return kept, nil
}

// keptPoint is a point chosen in the first pass: the nth (from 0) of the
// range's points with that tst; index is its place in the first pass.
type keptPoint struct {
	tst   int64
	nth   int
	index int
}

type keptPoints []keptPoint

// readGap is how many points apart two kept points may be and still be
// read in one walk: reading one more point costs less than starting
// another read, up to about this many.
const readGap = 64

// ranges returns the reads of the second pass: q's range cut to runs of
// kept points, so that a few thousand points of a year are read without
// walking the whole year again. Runs never share a tst.
func (k keptPoints) ranges(q storage.LocationQuery) []storage.LocationQuery {
	if len(k) == 0 {
		return []storage.LocationQuery{q}
	}
	var out []storage.LocationQuery
	run := storage.LocationQuery{User: q.User, Device: q.Device, From: k[0].tst, To: k[0].tst}
	for i := 1; i < len(k); i++ {
		if k[i].index-k[i-1].index > readGap && k[i].tst != run.To {
			out = append(out, run)
			run.From = k[i].tst
		}
		run.To = k[i].tst
	}
	return append(out, run)
}

// filter returns a function that, called with the range's points in walk
// order, accepts the kept ones.
func (k keptPoints) filter() func(*storage.Message) bool {
	j := 0
	lastTST, nth := int64(math.MinInt64), 0
	return func(m *storage.Message) bool {
		if m.TST == lastTST {
			nth++
		} else {
			lastTST, nth = m.TST, 0
		}
		for j < len(k) && (k[j].tst < m.TST || k[j].tst == m.TST && k[j].nth < nth) {
			j++ // gone since the first pass
		}
		if j < len(k) && k[j].tst == m.TST && k[j].nth == nth {
			j++
			return true
		}
		return false
	}
}

// cancelEvery is how many distance computations douglasPeucker does
// between looks at its context.
const cancelEvery = 1 << 20

// douglasPeucker simplifies the polyline (x, y) and returns the indices
// of the points kept, ascending; the first and the last are always kept.
// A stretch between two kept points is split at its point farthest from
// the segment joining them while that point is more than tolerance away
// and, with maxPoints > 0, fewer than maxPoints are kept. With maxPoints,
// stretches are split farthest first, so the result is the most
// significant points of the tolerance's result. The work list is a heap
// or a stack, not recursion: a million points are no stack risk.
func douglasPeucker(ctx context.Context, x, y []float64, tolerance float64, maxPoints int) ([]int, error) {
	n := len(x)
	if n <= 2 {
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		return idx, nil
	}
	tol2 := tolerance * tolerance
	keep := make([]bool, n)
	keep[0], keep[n-1] = true, true
	kept := 2
	work := 0
	var todo stretches
	todo.heap = maxPoints > 0
	consider := func(a, b int) error {
		if b-a < 2 {
			return nil
		}
		if work += b - a; work >= cancelEvery {
			work = 0
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if far, d2 := farthest(x, y, a, b); d2 > tol2 {
			todo.push(stretch{a: a, b: b, far: far, d2: d2})
		}
		return nil
	}
	if err := consider(0, n-1); err != nil {
		return nil, err
	}
	for len(todo.s) > 0 && (maxPoints <= 0 || kept < maxPoints) {
		st := todo.pop()
		keep[st.far] = true
		kept++
		if err := consider(st.a, st.far); err != nil {
			return nil, err
		}
		if err := consider(st.far, st.b); err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	idx := make([]int, 0, kept)
	for i, k := range keep {
		if k {
			idx = append(idx, i)
		}
	}
	return idx, nil
}

// farthest returns the point strictly between a and b farthest from the
// segment a–b (not the line through them: a track that turns back beyond
// b must keep its turning point), and its squared distance.
func farthest(x, y []float64, a, b int) (int, float64) {
	ax, ay := x[a], y[a]
	dx, dy := x[b]-ax, y[b]-ay
	l2 := dx*dx + dy*dy
	xs, ys := x[a+1:b], y[a+1:b]
	ys = ys[:len(xs)]
	far, best := 0, -1.0
	if l2 == 0 {
		for i, px := range xs {
			px -= ax
			py := ys[i] - ay
			if d := px*px + py*py; d > best {
				far, best = i, d
			}
		}
		return a + 1 + far, best
	}
	// Distances are compared times l2, which saves a division a point:
	// beside the segment that is the cross product squared.
	for i, px := range xs {
		px -= ax
		py := ys[i] - ay
		var d float64
		switch dot := px*dx + py*dy; {
		case dot <= 0:
			d = (px*px + py*py) * l2
		case dot >= l2:
			ex, ey := px-dx, py-dy
			d = (ex*ex + ey*ey) * l2
		default:
			cross := px*dy - py*dx
			d = cross * cross
		}
		if d > best {
			far, best = i, d
		}
	}
	return a + 1 + far, best / l2
}

// stretch is a run of points between two kept ones, a and b, whose
// farthest point from the segment a–b is far, d2 away squared.
type stretch struct {
	a, b, far int
	d2        float64
}

// stretches is the work list: a max-heap by d2 when the order matters (a
// bound on the points), else a stack.
type stretches struct {
	s    []stretch
	heap bool
}

func (h *stretches) push(st stretch) {
	h.s = append(h.s, st)
	if !h.heap {
		return
	}
	for i := len(h.s) - 1; i > 0; {
		p := (i - 1) / 2
		if h.s[p].d2 >= h.s[i].d2 {
			break
		}
		h.s[p], h.s[i] = h.s[i], h.s[p]
		i = p
	}
}

func (h *stretches) pop() stretch {
	last := len(h.s) - 1
	if !h.heap {
		st := h.s[last]
		h.s = h.s[:last]
		return st
	}
	top := h.s[0]
	h.s[0] = h.s[last]
	h.s = h.s[:last]
	for i := 0; ; {
		l, big := 2*i+1, i
		if l < last && h.s[l].d2 > h.s[big].d2 {
			big = l
		}
		if r := l + 1; r < last && h.s[r].d2 > h.s[big].d2 {
			big = r
		}
		if big == i {
			break
		}
		h.s[i], h.s[big] = h.s[big], h.s[i]
		i = big
	}
	return top
}
