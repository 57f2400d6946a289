package storage

import (
	"context"
	"fmt"
)

// CheckReport is what Check found.
type CheckReport struct {
	Devices   int   `json:"devices"`
	Locations int   `json:"locations"` // visible: loose and packed
	Packed    int   `json:"packed"`    // of Locations, in blocks
	Blocks    int   `json:"blocks"`
	Hidden    int   `json:"hidden"`
	Messages  int   `json:"messages"` // every other type
	Events    int   `json:"events"`
	FileBytes int64 `json:"file_bytes"` // history.db on disk
	// Problems lists what is wrong, one sentence each; empty when the
	// store is sound. Only the first maxProblems are kept.
	Problems []string `json:"problems"`
	More     int      `json:"more_problems,omitempty"` // problems beyond those listed
}

// BytesPerLocation is the history file's size per stored location.
func (r *CheckReport) BytesPerLocation() float64 {
	if n := r.Locations + r.Hidden; n > 0 {
		return float64(r.FileBytes) / float64(n)
	}
	return 0
}

// maxProblems is how many problems a CheckReport lists.
const maxProblems = 100

// Problem adds a problem to r.
func (r *CheckReport) Problem(format string, args ...any) {
	if len(r.Problems) < maxProblems {
		r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
	} else {
		r.More++
	}
}

// Maintenance verifies a store and rebuilds what it derives from the
// stored records.
type Maintenance interface {
	// Check verifies the store without changing it. progress, if not
	// nil, gets the number of locations checked now and then.
	Check(ctx context.Context, progress func(done int)) (CheckReport, error)
	// Reindex rebuilds the store's indexes from the stored records.
	Reindex(ctx context.Context, progress func(done int)) error
}
