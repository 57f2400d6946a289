package broker

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/storage"
	"github.com/mochi-mqtt/server/v2/hooks/storage/bolt"
	"github.com/mochi-mqtt/server/v2/packets"
)

// sessionStore is mochi's bbolt storage hook for what changes rarely:
// client sessions and subscriptions. Retained messages (one per device,
// rewritten with every location) and in-flight deliveries would cost a
// bbolt transaction per message there; retained messages are kept by
// retainedStore instead, and in-flight deliveries are not persisted (our
// own store is the durable record; a restart re-sends retained state).
type sessionStore struct {
	*bolt.Hook
}

func (s sessionStore) Provides(b byte) bool {
	switch b {
	case mqtt.OnRetainMessage, mqtt.OnRetainedExpired, mqtt.StoredRetainedMessages,
		mqtt.OnQosPublish, mqtt.OnQosComplete, mqtt.OnQosDropped, mqtt.StoredInflightMessages,
		mqtt.OnSysInfoTick, mqtt.StoredSysInfo:
		return false
	}
	return s.Hook.Provides(b)
}

// retainedFlush is how often changed retained messages are written out.
const retainedFlush = 2 * time.Second

// retainedStore keeps retained messages in memory and writes them to a
// file in the background (and on shutdown), so a retained publish costs a
// map update, not a disk transaction.
type retainedStore struct {
	mqtt.HookBase
	path string
	log  *slog.Logger

	mu    sync.Mutex
	msgs  map[string]storage.Message
	dirty bool
	stop  chan struct{}
	done  chan struct{}
}

func newRetainedStore(path string, log *slog.Logger) *retainedStore {
	return &retainedStore{path: path, log: log, msgs: map[string]storage.Message{}}
}

func (r *retainedStore) ID() string { return "wherehouse-retained" }

func (r *retainedStore) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnRetainMessage, mqtt.OnRetainedExpired, mqtt.StoredRetainedMessages}, []byte{b})
}

// Init loads the file and starts the background writer.
func (r *retainedStore) Init(any) error {
	b, err := os.ReadFile(r.path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read retained messages %s: %w", r.path, err)
	}
	if len(b) > 0 {
		var list []storage.Message
		if err := json.Unmarshal(b, &list); err != nil {
			r.log.Warn("retained messages file unreadable; starting without them", "path", r.path, "error", err)
		}
		for _, m := range list {
			r.msgs[m.TopicName] = m
		}
	}
	r.stop, r.done = make(chan struct{}), make(chan struct{})
	go r.run()
	return nil
}

func (r *retainedStore) run() {
	defer close(r.done)
	t := time.NewTicker(retainedFlush)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			r.flush()
		case <-r.stop:
			r.flush()
			return
		}
	}
}

// Stop writes what changed and ends the writer.
func (r *retainedStore) Stop() error {
	if r.stop != nil {
		close(r.stop)
		<-r.done
		r.stop = nil
	}
	return nil
}

func (r *retainedStore) flush() {
	r.mu.Lock()
	if !r.dirty {
		r.mu.Unlock()
		return
	}
	list := make([]storage.Message, 0, len(r.msgs))
	for _, m := range r.msgs {
		list = append(list, m)
	}
	r.dirty = false
	r.mu.Unlock()
	b, err := json.Marshal(list)
	if err == nil {
		tmp := r.path + ".tmp"
		if err = os.WriteFile(tmp, b, 0o600); err == nil {
			err = os.Rename(tmp, r.path)
		}
	}
	if err != nil {
		r.log.Error("retained messages not saved", "path", r.path, "error", err)
		r.mu.Lock()
		r.dirty = true
		r.mu.Unlock()
	}
}

func (r *retainedStore) OnRetainMessage(cl *mqtt.Client, pk packets.Packet, n int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dirty = true
	if n == -1 {
		delete(r.msgs, pk.TopicName)
		return
	}
	r.msgs[pk.TopicName] = storage.Message{
		ID: storage.RetainedKey + "_" + pk.TopicName, T: storage.RetainedKey,
		FixedHeader: pk.FixedHeader, TopicName: pk.TopicName, Payload: pk.Payload,
		Created: pk.Created, Client: cl.ID, Origin: pk.Origin,
	}
}

func (r *retainedStore) OnRetainedExpired(topic string) {
	r.mu.Lock()
	delete(r.msgs, topic)
	r.dirty = true
	r.mu.Unlock()
}

func (r *retainedStore) StoredRetainedMessages() ([]storage.Message, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]storage.Message, 0, len(r.msgs))
	for _, m := range r.msgs {
		out = append(out, m)
	}
	return out, nil
}
