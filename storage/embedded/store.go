package embedded

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/tidwall/buntdb"
	bolt "go.etcd.io/bbolt"

	"github.com/wherehouse/wherehouse/storage"
)

// File names inside the data directory.
const (
	HistoryFile = "history.db"
	StateFile   = "state.db"
)

// lockTimeout is how long Open waits for another process to release the
// history file before it reports storage.ErrLocked.
const lockTimeout = 200 * time.Millisecond

// Store is the embedded backend.
type Store struct {
	path  string // history file, absolute
	hist  *bolt.DB
	state *buntdb.DB
	log   *slog.Logger

	// lastMu orders the read-then-write updates of last positions, so a
	// recomputation after a deletion cannot overwrite a newer position
	// that an Append wrote meanwhile.
	lastMu sync.Mutex

	// pack says when loose locations are packed into blocks; loose counts
	// them per "<user>/<device>/loc". loose is only used inside write
	// transactions of hist, which bbolt runs one at a time.
	pack  packConfig
	loose map[string]int

	// geoMu guards the spatial index's caches (area.go): device IDs by
	// "<user>\x00<device>" and what each device was last indexed under.
	needIndex bool // set by migrate: the store predates the spatial index

	geoMu    sync.Mutex
	devIDs   map[string]uint32
	geoMarks map[uint32]geoMark
	geoGen   int // counts reindexes
}

var (
	_ storage.Store       = (*Store)(nil)
	_ storage.Maintenance = (*Store)(nil)
)

// Open opens (creating if needed) the store in dir. It fails with
// storage.ErrLocked when another process has it open.
func Open(ctx context.Context, dir string, log *slog.Logger) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory %s: %w", dir, err)
	}
	histPath := filepath.Join(dir, HistoryFile)
	hist, err := bolt.Open(histPath, 0o600, &bolt.Options{
		Timeout: lockTimeout,
		// The free list is written on commit: reading it back is instant,
		// where rebuilding it would walk (and map) the whole file at open.
		FreelistType:    bolt.FreelistMapType,
		InitialMmapSize: 1 << 30, // address space only; avoids remaps that wait for readers
	})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("open %s: %w", histPath, storage.ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open history db %s: %w", histPath, err)
	}
	abs, err := filepath.Abs(histPath)
	if err != nil {
		abs = histPath
	}
	s := &Store{path: abs, hist: hist, log: log, pack: defaultPack, loose: map[string]int{},
		devIDs: map[string]uint32{}, geoMarks: map[uint32]geoMark{}}
	if err := s.migrate(); err != nil {
		hist.Close()
		return nil, err
	}
	// buntdb has no lock of its own; the bbolt lock above guards it.
	statePath := filepath.Join(dir, StateFile)
	state, err := buntdb.Open(statePath)
	if err != nil {
		hist.Close()
		return nil, fmt.Errorf("open state db %s: %w", statePath, err)
	}
	if err := state.SetConfig(buntdb.Config{
		SyncPolicy:           buntdb.EverySecond,
		AutoShrinkPercentage: 100,
		AutoShrinkMinSize:    32 << 20,
	}); err != nil {
		state.Close()
		hist.Close()
		return nil, fmt.Errorf("configure state db: %w", err)
	}
	s.state = state
	if err := s.reconcileLast(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if s.needIndex {
		log.Info("building the spatial index of a store written by an older wherehouse; this runs once")
		if err := s.Reindex(ctx, nil); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

func (s *Store) migrate() error {
	return s.hist.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return fmt.Errorf("create meta bucket: %w", err)
		}
		for _, name := range [][]byte{bucketHist, bucketFenceState, bucketEvents, bucketEventID, bucketOutbox, bucketOutboxID, bucketDeliveries, bucketGeo, bucketDevID, bucketDevName} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create %s bucket: %w", name, err)
			}
		}
		var v uint64
		if b := meta.Get(keySchema); len(b) == 8 {
			v = binary.BigEndian.Uint64(b)
		}
		if v > schemaVersion {
			return fmt.Errorf("schema version %d, this binary knows %d: %w", v, schemaVersion, storage.ErrNewerSchema)
		}
		// Numbered migrations from v to schemaVersion go here. 1 -> 2:
		// the spatial index is built by Open, after this transaction;
		// loose history is packed by the Appends that follow (and by
		// reindex).
		s.needIndex = v == 1
		return meta.Put(keySchema, binary.BigEndian.AppendUint64(nil, schemaVersion))
	})
}

// errRelease ends the transaction ReleaseMemory runs in without a commit.
var errRelease = errors.New("release")

// ReleaseMemory drops history pages this process has touched from its
// resident set (they stay in the page cache). The server calls it
// periodically and after long reads, so RSS stays flat however large the
// history is. It holds the writer lock briefly so bbolt cannot remap.
func (s *Store) ReleaseMemory() error {
	var rerr error
	err := s.hist.Update(func(*bolt.Tx) error {
		rerr = releaseMapped(s.path)
		return errRelease
	})
	if !errors.Is(err, errRelease) {
		return err
	}
	return rerr
}

// Close flushes and closes both files.
func (s *Store) Close() error {
	var errs []error
	if s.state != nil {
		if err := s.state.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close state db: %w", err))
		}
	}
	if err := s.hist.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close history db: %w", err))
	}
	return errors.Join(errs...)
}
