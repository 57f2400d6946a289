// Recent enter/leave events: /api/v1/events, then live from /ws/events,
// newest first ("alice/phone entered Home · 3 min ago").
import { Socket, get } from './api.js';
import { FOCUS_ZOOM } from './mapview.js';
import { $, ago, batcher, button, describeError, fmtDateTime, h, showError } from './ui.js';

const SHOWN = 50;
const TICK_MS = 30000;

export function createEvents(map, hooks) {
  const list = $('events');
  const events = new Map(); // id → event
  let started = false;
  let loaded = false;
  let tick = 0;

  const render = batcher(draw);

  const socket = new Socket('/ws/events', {
    onMessage(msg) {
      if (add(msg)) render();
    },
    onState(state) {
      list.dataset.state = state;
    },
  });

  // add keeps one event; the same transition always has the same id.
  function add(ev) {
    if (!ev || (ev._type && ev._type !== 'event') || !ev.id || !ev.event) return false;
    events.set(String(ev.id), ev);
    return true;
  }

  function draw() {
    const newest = [...events.values()].sort((a, b) => b.tst - a.tst).slice(0, SHOWN);
    // Forget what scrolled off the end.
    if (events.size > SHOWN) {
      const keep = new Set(newest.map((e) => String(e.id)));
      for (const id of events.keys()) if (!keep.has(id)) events.delete(id);
    }
    const now = Date.now() / 1000;
    list.replaceChildren(...newest.map((ev) => item(ev, now)));
    $('events-empty').hidden = !loaded || newest.length > 0;
  }

  function item(ev, now) {
    const verb = ev.event === 'enter' ? 'entered' : ev.event === 'leave' ? 'left' : ev.event;
    const place = ev.desc || hooks.fenceName?.(ev.fence) || ev.fence || 'a fence';
    const text = `${ev.user}/${ev.device} ${verb} ${place}`;
    const li = h('li', { class: `event ${ev.event}`, dataset: { eventId: String(ev.id) } });
    const time = h('time', { datetime: ev.isotst || new Date(ev.tst * 1000).toISOString(), title: fmtDateTime(ev.tst) }, ago(ev.tst, now));
    const body = [h('span', { class: 'what' }, text), ' · ', time];
    if (ev.source === 'device') body.push(h('span', { class: 'source', title: 'Reported by the phone' }, ' (phone)'));
    if (Number.isFinite(ev.lat) && Number.isFinite(ev.lon)) {
      li.append(button(body, () => {
        hooks.beforeFocus?.();
        map.flyTo([ev.lat, ev.lon], Math.max(map.getZoom(), FOCUS_ZOOM), { duration: 0.8 });
      }, { 'aria-label': `${text}, ${ago(ev.tst, now)}; show on the map` }));
    } else {
      li.append(...body);
    }
    return li;
  }

  async function load() {
    try {
      const arr = await get('/api/v1/events?limit=50');
      for (const ev of Array.isArray(arr) ? arr : []) add(ev);
      loaded = true;
      draw();
      socket.start();
    } catch (err) {
      if (err.status === 404) {
        $('events-empty').textContent = 'This server does not record events.';
        $('events-empty').hidden = false;
        return;
      }
      if (err.status !== 401) showError(describeError('Cannot load the recent events', err), load);
    }
  }

  return {
    // show starts loading on the first visit; the socket then stays open.
    show() {
      if (!started) {
        started = true;
        load();
      }
      clearInterval(tick);
      tick = setInterval(render, TICK_MS);
      render();
    },
    hide() {
      clearInterval(tick);
    },
    stop() {
      started = false;
      loaded = false;
      socket.stop();
      clearInterval(tick);
      events.clear();
      list.replaceChildren();
      $('events-empty').hidden = true;
    },
  };
}
