package geo

import (
	"cmp"
	"math"
	"slices"
)

// nodeSize is the fan-out of the R-tree: 16 entries keep a node's boxes in
// a few cache lines and the tree shallow (5 levels for a million fences).
const nodeSize = 16

// Index is an immutable R-tree over fences, packed once by Sort-Tile-
// Recursive (Leutenegger et al., 1997): entries are sorted into vertical
// slices by the centre's longitude, then within a slice by latitude, and
// cut into full nodes, level by level. Packed nodes are nearly full and
// overlap little, which a tree grown by insertion does not manage. It is
// safe for concurrent readers; to change the fences, build a new Index.
type Index struct {
	fences []*Fence // in packing order
	boxes  []box    // fences[i]'s bounding box
	nodes  []node   // every level, leaves first; the root is last
}

// node is an entry of the tree: its box, and its children nodes[lo:hi],
// or fences[lo:hi] for a leaf.
type node struct {
	minLon, minLat, maxLon, maxLat float64
	lo, hi                         int
	leaf                           bool
}

// NewIndex builds an Index over fences. Nil fences and fences without a
// Shape are left out. The Index keeps the pointers, so the fences must not
// be changed while it is in use.
func NewIndex(fences []*Fence) *Index {
	ix := &Index{fences: make([]*Fence, 0, len(fences))}
	entries := make([]node, 0, len(fences))
	for _, f := range fences {
		if f == nil || f.Shape == nil {
			continue
		}
		b := f.Shape.Bound()
		entries = append(entries, node{minLon: b.Min[0], minLat: b.Min[1], maxLon: b.Max[0], maxLat: b.Max[1], lo: len(ix.fences)})
		ix.fences = append(ix.fences, f)
	}
	if len(entries) == 0 {
		return ix
	}
	// Leaves: pack the fences' boxes, then reorder the fences to match
	// so that a leaf's fences are one run.
	pack(entries)
	sorted := make([]*Fence, len(entries))
	ix.boxes = make([]box, len(entries))
	for i, e := range entries {
		sorted[i] = ix.fences[e.lo]
		ix.boxes[i] = box{e.minLon, e.minLat, e.maxLon, e.maxLat}
	}
	ix.fences = sorted
	level := group(entries, true)
	ix.nodes = append(ix.nodes, level...)
	// Upper levels: pack the level below in place, then group it.
	for len(level) > 1 {
		start := len(ix.nodes) - len(level)
		pack(ix.nodes[start:])
		level = group(ix.nodes[start:], false)
		for i := range level {
			level[i].lo += start
			level[i].hi += start
		}
		ix.nodes = append(ix.nodes, level...)
	}
	return ix
}

// pack sorts entries into STR order.
func pack(entries []node) {
	leaves := (len(entries) + nodeSize - 1) / nodeSize
	perSlice := int(math.Ceil(math.Sqrt(float64(leaves)))) * nodeSize
	// Ties are broken by lo, unique within a level, so the order is
	// total and a build is the same for the same input.
	slices.SortFunc(entries, func(a, b node) int {
		return cmp.Or(cmp.Compare(a.minLon+a.maxLon, b.minLon+b.maxLon), cmp.Compare(a.lo, b.lo))
	})
	for lo := 0; lo < len(entries); lo += perSlice {
		slices.SortFunc(entries[lo:min(lo+perSlice, len(entries))], func(a, b node) int {
			return cmp.Or(cmp.Compare(a.minLat+a.maxLat, b.minLat+b.maxLat), cmp.Compare(a.lo, b.lo))
		})
	}
}

// group makes one parent per run of nodeSize entries.
func group(entries []node, leaf bool) []node {
	parents := make([]node, 0, (len(entries)+nodeSize-1)/nodeSize)
	for lo := 0; lo < len(entries); lo += nodeSize {
		hi := min(lo+nodeSize, len(entries))
		p := node{minLon: math.Inf(1), minLat: math.Inf(1), maxLon: math.Inf(-1), maxLat: math.Inf(-1), lo: lo, hi: hi, leaf: leaf}
		for _, e := range entries[lo:hi] {
			p.minLon, p.minLat = math.Min(p.minLon, e.minLon), math.Min(p.minLat, e.minLat)
			p.maxLon, p.maxLat = math.Max(p.maxLon, e.maxLon), math.Max(p.maxLat, e.maxLat)
		}
		parents = append(parents, p)
	}
	return parents
}

// Len reports how many fences the Index holds.
func (ix *Index) Len() int { return len(ix.fences) }

// Search calls fn for every fence whose bounding box, grown by margin
// metres, contains (lat, lon), in no particular order, until fn returns
// false. The growth is taken generously (at the latitude, over the margin,
// farthest from the equator), so a fence whose Distance from the point is
// at most margin is always found, and a few farther ones may be too.
//
// A fix can only enter fences Search finds with a margin of 0; but a
// device already inside a fence, or with a transition pending, must have
// that fence stepped for every fix wherever it is, since the fix far away
// is the one that makes it leave.
func (ix *Index) Search(lat, lon, margin float64, fn func(*Fence) bool) {
	if len(ix.nodes) == 0 {
		return
	}
	q := queryBox(lat, lon, margin)
	// Depth-first with an explicit stack: each level adds at most
	// nodeSize-1 entries beyond the one it pops, so 256 covers 17
	// levels, far more than 2^63 fences need.
	var stack [256]int
	stack[0] = len(ix.nodes) - 1
	n := 1
	for n > 0 {
		n--
		nd := &ix.nodes[stack[n]]
		if !q.overlaps(nd) {
			continue
		}
		if !nd.leaf {
			for i := nd.lo; i < nd.hi; i++ {
				stack[n] = i
				n++
			}
			continue
		}
		for i := nd.lo; i < nd.hi; i++ {
			if q.intersects(ix.boxes[i]) && !fn(ix.fences[i]) {
				return
			}
		}
	}
}

// box is a query rectangle in degrees.
type box struct{ minLon, minLat, maxLon, maxLat float64 }

func (q box) overlaps(n *node) bool {
	return q.minLon <= n.maxLon && n.minLon <= q.maxLon && q.minLat <= n.maxLat && n.minLat <= q.maxLat
}

func (q box) intersects(b box) bool {
	return q.minLon <= b.maxLon && b.minLon <= q.maxLon && q.minLat <= b.maxLat && b.minLat <= q.maxLat
}

// queryBox is the point grown by margin metres. Testing it against a
// fence's box is testing the point against the fence's box grown by
// margin. The longitude half-width is taken at the latitude farthest from
// the equator that the margin reaches, where a degree is shortest, so it
// is never too small; near a pole it spans every longitude.
func queryBox(lat, lon, margin float64) box {
	if !(margin > 0) {
		return box{lon, lat, lon, lat}
	}
	dLat := margin / degreeLen
	cos := math.Cos(math.Min(90, math.Abs(lat)+dLat) * radPerDeg)
	dLon := 360.0
	if cos > 1e-9 {
		dLon = math.Min(360, dLat/cos)
	}
	return box{lon - dLon, lat - dLat, lon + dLon, lat + dLat}
}
