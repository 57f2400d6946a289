package events

import (
	"context"
	"fmt"

	"github.com/wherehouse/wherehouse/storage"
)

// Imported history must never fire events: imports bypass the recorder, so
// the engine does not see them live, but a device's watermark would let the
// next start evaluate imported fixes newer than it as if they had just
// happened. Importers therefore move the watermark past what they stored.

// SkipImported moves the watermark of user/device to tst when it is older,
// for an import done while the engine runs.
func (e *Engine) SkipImported(user, device string, tst int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	k := devKey{user, device}
	mk := e.marks[k]
	if mk == nil || tst <= mk.tst {
		return // no watermark: nothing would be caught up for this device
	}
	mk.tst = tst
	if !mk.dirty {
		mk.dirty = true
		e.dirty = append(e.dirty, k)
	}
}

// SkipImportedInStore does the same in a store no engine has open (the
// server is not running). marks maps user/device to the newest imported tst.
func SkipImportedInStore(ctx context.Context, store storage.Events, marks map[[2]string]int64) error {
	if len(marks) == 0 {
		return nil
	}
	states, err := store.FenceStates(ctx)
	if err != nil {
		return fmt.Errorf("read fence watermarks: %w", err)
	}
	var moved []storage.FenceState
	for _, s := range states {
		if s.Fence != "" {
			continue
		}
		if tst, ok := marks[[2]string{s.User, s.Device}]; ok && tst > s.Last {
			s.Last = tst
			moved = append(moved, s)
		}
	}
	if len(moved) == 0 {
		return nil
	}
	_, err = store.RecordTransitions(ctx, moved, nil, nil)
	return err
}
