package engine

import (
	"context"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/events"
)

// eventLog keeps the last events for `since` and fans new ones out to
// subscribers. A subscriber that does not keep up loses events (its
// channel is full) rather than slow the engine.
type eventLog struct {
	mu   sync.Mutex
	past []events.Message // oldest first, at most keepEvents
	subs map[chan events.Message]struct{}
}

const keepEvents = 1024

func (l *eventLog) publish(m events.Message) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.past) == keepEvents {
		l.past = append(l.past[:0], l.past[1:]...)
	}
	l.past = append(l.past, m)
	for ch := range l.subs {
		select {
		case ch <- m:
		default:
		}
	}
}

// Emit records an event of another object than a container (image,
// volume, network), as dockerd reports them: the actor's ID and
// attributes.
func (e *Engine) Emit(typ events.Type, action events.Action, id string, attrs map[string]string) {
	now := time.Now()
	if attrs == nil {
		attrs = map[string]string{}
	}
	e.events.publish(events.Message{
		Type: typ, Action: action, Scope: "local",
		Actor: events.Actor{ID: id, Attributes: attrs},
		Time:  now.Unix(), TimeNano: now.UnixNano(),
	})
}

// emit records a container event with docker's attributes: the
// container's name and image, its labels, and extra.
func (e *Engine) emit(c *ctr, action events.Action, extra map[string]string) {
	e.mu.Lock()
	attrs := map[string]string{"name": strings.TrimPrefix(c.rec.Name, "/"), "image": c.rec.Config.Image}
	maps.Copy(attrs, c.rec.Config.Labels)
	id := c.rec.ID
	e.mu.Unlock()
	maps.Copy(attrs, extra)
	e.Emit(events.ContainerEventType, action, id, attrs)
}

// emitNetwork records a network event about container id (connect,
// disconnect) on the network netID.
func (e *Engine) emitNetwork(action events.Action, netID, id string) {
	n, err := e.o.Network.Get(netID)
	if err != nil {
		return
	}
	e.Emit(events.NetworkEventType, action, n.ID, map[string]string{"container": id, "name": n.Name, "type": n.Driver})
}

// EventFilter picks events; nil takes all.
type EventFilter func(events.Message) bool

// Events sends the recorded events since `since` (zero: none), then new
// ones as they happen, until ctx ends or `until` (zero: never) passes.
func (e *Engine) Events(ctx context.Context, since, until time.Time, keep EventFilter, send func(events.Message) error) error {
	ch := make(chan events.Message, 256)
	l := &e.events
	l.mu.Lock()
	var past []events.Message
	if !since.IsZero() {
		for _, m := range l.past {
			if m.TimeNano >= since.UnixNano() && (until.IsZero() || m.TimeNano <= until.UnixNano()) {
				past = append(past, m)
			}
		}
	}
	if l.subs == nil {
		l.subs = map[chan events.Message]struct{}{}
	}
	l.subs[ch] = struct{}{}
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		delete(l.subs, ch)
		l.mu.Unlock()
	}()
	for _, m := range past {
		if keep == nil || keep(m) {
			if err := send(m); err != nil {
				return err
			}
		}
	}
	var deadline <-chan time.Time
	if !until.IsZero() {
		if !until.After(time.Now()) {
			return nil
		}
		deadline = time.After(time.Until(until))
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-deadline:
			return nil
		case m := <-ch:
			if keep == nil || keep(m) {
				if err := send(m); err != nil {
					return err
				}
			}
		}
	}
}
