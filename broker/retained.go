package broker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/storage"
	"github.com/mochi-mqtt/server/v2/hooks/storage/bolt"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/wherehouse/wherehouse/recorder"
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
	path    string
	devices DeviceLister // nil: keep every saved message
	log     *slog.Logger

	mu    sync.Mutex
	msgs  map[string]storage.Message
	dirty bool
	stop  chan struct{}
	done  chan struct{}
}

func newRetainedStore(path string, devices DeviceLister, log *slog.Logger) *retainedStore {
	return &retainedStore{path: path, devices: devices, log: log, msgs: map[string]storage.Message{}}
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
	if n == -1 || len(pk.Payload) == 0 { // [MQTT-3.3.1-11]
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

// StoredRetainedMessages is what mochi loads at start, before it accepts
// clients.
func (r *retainedStore) StoredRetainedMessages() ([]storage.Message, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dropDeleted()
	out := make([]storage.Message, 0, len(r.msgs))
	for _, m := range r.msgs {
		out = append(out, m)
	}
	return out, nil
}

// dropDeletedTimeout bounds asking the store for devices at start.
const dropDeletedTimeout = 30 * time.Second

// dropDeleted removes the saved retained messages of devices that have no
// data in the store: deleted while the server was not running ("wherehouse
// delete" on the store itself), when no broker was there to clear them
// (see Embedded.ForgetRetained). If the store cannot answer, everything
// is kept. Called with r.mu held.
func (r *retainedStore) dropDeleted() {
	if r.devices == nil || len(r.msgs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), dropDeletedTimeout)
	defer cancel()
	known := map[string]map[string]bool{} // user -> device -> has data
	var drop []string
	for topic := range r.msgs {
		user, device, err := recorder.ParseTopic(topic)
		if err != nil {
			continue // not a device's topic
		}
		devices, ok := known[user]
		if !ok {
			if devices, err = r.userDevices(ctx, user); err != nil {
				r.log.Warn("retained messages not checked against the store; keeping them", "user", user, "error", err)
				return
			}
			known[user] = devices
		}
		if !devices[device] {
			drop = append(drop, topic)
		}
	}
	for _, topic := range drop {
		delete(r.msgs, topic)
	}
	if len(drop) > 0 {
		r.dirty = true
		r.log.Info("retained messages of deleted devices dropped", "topics", len(drop))
	}
}

// userDevices returns the devices of user with history or state, lower
// case as recorder.ParseTopic makes them (imports may keep other case).
func (r *retainedStore) userDevices(ctx context.Context, user string) (map[string]bool, error) {
	out := map[string]bool{}
	names, err := r.devices.Devices(ctx, user)
	if err != nil {
		return nil, fmt.Errorf("list devices of %s: %w", user, err)
	}
	for _, d := range names {
		out[strings.ToLower(d)] = true
	}
	states, err := r.devices.ListDevices(ctx, user)
	if err != nil {
		return nil, fmt.Errorf("list device states of %s: %w", user, err)
	}
	for _, d := range states {
		out[strings.ToLower(d.Device)] = true
	}
	return out, nil
}
