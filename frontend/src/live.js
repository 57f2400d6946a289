// The live view: the last location of every device the user may see
// (/api/0/last, /api/v1/devices), kept live over the /ws/last WebSocket.
// Built for hundreds of devices: markers are reused (setLatLng), frames are
// applied once per animation frame, and the list is patched, not rebuilt.
import L from 'leaflet';
import { ApiError, Socket, get } from './api.js';
import { FOCUS_ZOOM, fitTo } from './mapview.js';
import {
  $, ago, avatar, batcher, button, clearError, colorOf, describeError, fmtDateTime, h,
  showError, toUnix,
} from './ui.js';

const LIST_MS = 250; // at most this often the people list is redrawn during live updates
const STALE_SECS = 3600; // no fix for longer than this: "stale"
const TICK_MS = 30000; // keeps "3 min ago" true
const DEVICES_REFRESH_MS = 30000; // online/offline without a new fix; missed frames
const WS_FAILURES_BEFORE_NOTICE = 3;
const RESYNC_SLACK_SECS = 10; // heard from this much after the fix shown: a frame was missed
const RESYNC_MIN_MS = 60000;

const CONNECTION = { w: 'Wi-Fi', m: 'mobile data', o: 'offline' };
const STATUS_TEXT = { online: 'online', offline: 'offline', stale: 'stale' };
const STATUS_TITLE = {
  online: 'Connected to the server',
  offline: 'Not connected to the server',
  stale: 'No fix for more than an hour',
};

// keyParts returns [user, device] of a location object; the Recorder's
// objects carry username and device, and always the topic.
function keyParts(loc) {
  if (loc.username && loc.device) return [String(loc.username), String(loc.device)];
  const m = /^[^/]+\/([^/]+)\/([^/]+)/.exec(loc.topic || '');
  return m ? [m[1], m[2]] : [null, null];
}

// The icon element carries data-key and data-lat/data-lon (updated on
// every move), which browser tests read.
const MarkerIcon = L.DivIcon.extend({
  createIcon(old) {
    const div = L.DivIcon.prototype.createIcon.call(this, old);
    div.dataset.key = this.options.key;
    return div;
  },
});

export function createLive(map, hooks) {
  const list = $('people');
  const layer = L.layerGroup();
  const entries = new Map(); // key → entry, see entry()
  const pending = new Map(); // key → newest location not yet applied
  const dirty = new Set(); // keys whose list item needs drawing
  let reorder = false; // an item was added or its sort name changed
  let fitted = false;
  let shown = false;
  let running = false;
  let tick = 0;
  let refresh = 0;
  let noticeShown = false;
  let filter = '';
  let lastResync = 0;

  const flush = batcher(applyPending);

  const socket = new Socket('/ws/last', {
    onOpen: (ws) => {
      ws.send('LAST'); // as the Recorder: the server answers with every last position
      if (noticeShown) {
        noticeShown = false;
        clearError();
      }
    },
    onMessage: (msg) => {
      for (const loc of Array.isArray(msg) ? msg : [msg]) {
        if (!loc || (loc._type && loc._type !== 'location')) continue;
        const [user, device] = keyParts(loc);
        if (!user) continue;
        const key = `${user}/${device}`;
        const queued = pending.get(key);
        if (!queued || !(loc.tst < queued.tst)) pending.set(key, loc);
      }
      flush();
    },
    onState: (state, failures) => {
      const live = $('live');
      live.dataset.state = state;
      const text = { open: 'connected', connecting: 'connecting', closed: 'not connected' }[state];
      live.title = `Live updates: ${text}`;
      live.firstElementChild.textContent = live.title;
      if (state === 'closed' && failures === WS_FAILURES_BEFORE_NOTICE && running) {
        // The handshake fails without a reason; a 401 here ends the session.
        get('/api/v1/session').catch(() => {});
        noticeShown = true;
        showError('Live updates are unavailable; still retrying. Positions may be out of date.');
      }
    },
  });

  function entry(key, user, device) {
    let d = entries.get(key);
    if (!d) {
      d = { key, user, device, loc: null, dev: null, online: null, marker: null, circle: null, sort: '' };
      // The item is built once; drawItem changes only what changed, as
      // hundreds of items are patched per second at peak.
      d.ui = {
        badge: h('span'),
        name: h('span', { class: 'name' }),
        sub: h('span', { class: 'sub' }),
        status: h('span', { class: 'status' }),
        when: h('span', { class: 'when' }),
        shown: {},
      };
      d.item = h('li', { dataset: { key } },
        button([
          d.ui.badge,
          h('span', { class: 'who' }, d.ui.name, d.ui.sub),
          h('span', { class: 'state' }, d.ui.status, d.ui.when),
        ], () => focus(key), { class: 'person' }));
      entries.set(key, d);
      reorder = true;
    }
    return d;
  }

  const nameOf = (d) => d.loc?.name || d.dev?.name || d.user;
  const info = (d) => ({ face: d.loc?.face, tid: d.loc?.tid || d.dev?.tid, device: d.device, user: d.user });

  function statusOf(d, now) {
    if (d.loc && now - d.loc.tst > STALE_SECS) return 'stale';
    if (!d.loc && d.dev?.last_seen && now - toUnix(d.dev.last_seen) > STALE_SECS) return 'stale';
    return d.online === false ? 'offline' : 'online';
  }

  // applyLoc moves (or adds) the device's marker to loc.
  function applyLoc(loc) {
    if (!Number.isFinite(loc.lat) || !Number.isFinite(loc.lon)) return;
    const [user, device] = keyParts(loc);
    if (!user) return;
    const key = `${user}/${device}`;
    const d = entry(key, user, device);
    if (d.loc && Number.isFinite(loc.tst) && loc.tst < d.loc.tst) return; // older than the one shown
    const old = d.loc;
    // A frame without the card keeps the face and name we have.
    d.loc = { face: old?.face, name: old?.name, ...loc };
    if (typeof loc.status === 'string') d.online = loc.status === 'online';
    const at = [loc.lat, loc.lon];
    const radius = Number.isFinite(loc.acc) && loc.acc > 0 ? loc.acc : 0;
    if (!d.marker) {
      d.marker = L.marker(at, { icon: iconOf(d), title: nameOf(d), keyboard: false, riseOnHover: true });
      d.circle = L.circle(at, {
        radius, weight: 1, opacity: 0.6, fillOpacity: 0.08, interactive: false, color: colorOf(key),
      });
      d.marker.bindPopup(() => popupContent(d), { maxWidth: 300 });
      d.marker.on('add', () => syncIcon(d));
      layer.addLayer(d.circle);
      layer.addLayer(d.marker);
    } else {
      d.marker.setLatLng(at);
      d.circle.setLatLng(at).setRadius(radius);
      if (old.tid !== d.loc.tid || old.face !== d.loc.face || nameOf({ ...d, loc: old }) !== nameOf(d)) {
        d.marker.options.title = nameOf(d);
        d.marker.setIcon(iconOf(d));
      }
      if (d.marker.isPopupOpen()) d.marker.getPopup().update();
    }
    syncIcon(d);
    dirty.add(key);
  }

  function iconOf(d) {
    return new MarkerIcon({
      html: avatar(info(d), d.key), className: 'wh-marker', key: d.key, iconSize: [36, 36], popupAnchor: [0, -16],
    });
  }

  function syncIcon(d) {
    const el = d.marker?.getElement();
    if (!el || !d.loc) return;
    el.dataset.lat = String(d.loc.lat);
    el.dataset.lon = String(d.loc.lon);
    el.dataset.status = statusOf(d, Date.now() / 1000);
  }

  // The list is redrawn at most four times a second: with hundreds of
  // people moving, redrawing it every frame costs more than the map.
  let listAt = 0;
  let listTimer = 0;
  function drawListSoon() {
    const now = performance.now();
    if (now - listAt >= LIST_MS) {
      listAt = now;
      drawList();
    } else if (!listTimer) {
      listTimer = setTimeout(() => {
        listTimer = 0;
        listAt = performance.now();
        drawList();
      }, LIST_MS - (now - listAt));
    }
  }

  function applyPending() {
    for (const loc of pending.values()) applyLoc(loc);
    pending.clear();
    drawListSoon();
    if (!fitted && shown && markerCount()) fitAll();
  }

  const markerCount = () => {
    let n = 0;
    for (const d of entries.values()) if (d.marker) n++;
    return n;
  };

  // drawList redraws the dirty items and restores the order by name.
  // While the list is out of sight only new items are drawn; the rest
  // wait for redraw().
  function drawList() {
    const now = Date.now() / 1000;
    const visible = !list.closest('[hidden]');
    for (const key of dirty) {
      const d = entries.get(key);
      if (d && !visible && d.sort) continue;
      if (d) drawItem(d, now);
      dirty.delete(key);
    }
    if (reorder) {
      reorder = false;
      const sorted = [...entries.values()].sort((a, b) => a.sort.localeCompare(b.sort) || a.key.localeCompare(b.key));
      const items = sorted.map((d) => d.item);
      if (items.some((item, i) => list.children[i] !== item)) list.append(...items);
    }
    const n = entries.size;
    $('people-count').textContent = n === 1 ? '1 device' : `${n} devices`;
    $('people-empty').hidden = n > 0 || !running;
  }

  function drawItem(d, now) {
    const name = nameOf(d);
    const sort = `${name} ${d.device}`.toLowerCase();
    if (sort !== d.sort) {
      d.sort = sort;
      reorder = true;
    }
    const status = statusOf(d, now);
    const ui = d.ui;
    const was = ui.shown;
    const next = {
      badge: `${d.loc?.face || ''}|${d.loc?.tid || d.dev?.tid || ''}`,
      name,
      sub: name === d.user ? d.device : `${d.user}/${d.device}`,
      status,
      when: d.loc ? ago(d.loc.tst, now) : 'no location yet',
      hidden: Boolean(filter) && !sort.includes(filter) && !d.key.includes(filter),
    };
    if (next.badge !== was.badge) ui.badge.replaceWith((ui.badge = avatar(info(d), d.key)));
    if (next.name !== was.name) ui.name.textContent = name;
    if (next.sub !== was.sub) ui.sub.textContent = next.sub;
    if (next.status !== was.status) {
      ui.status.className = `status ${status}`;
      ui.status.title = STATUS_TITLE[status];
      ui.status.textContent = STATUS_TEXT[status];
      d.item.dataset.status = status;
      const el = d.marker?.getElement();
      if (el) el.dataset.status = status;
    }
    if (next.when !== was.when) ui.when.textContent = next.when;
    if (next.hidden !== was.hidden) d.item.hidden = next.hidden;
    ui.shown = next;
  }

  function popupContent(d) {
    const loc = d.loc;
    const num = (v, unit, digits = 0) => (Number.isFinite(v) ? `${v.toFixed(digits)} ${unit}` : '');
    const rows = [
      ['Seen', `${ago(loc.tst)} (${fmtDateTime(loc.tst)})`],
      ['Status', STATUS_TEXT[statusOf(d, Date.now() / 1000)]],
      ['Battery', num(loc.batt, '%')],
      ['Speed', num(loc.vel, 'km/h')],
      ['Accuracy', num(loc.acc, 'm')],
      ['Connection', CONNECTION[loc.conn] || ''],
      ['Address', typeof loc.addr === 'string' ? loc.addr : ''],
    ];
    return h('div', { class: 'popup' },
      h('strong', null, nameOf(d)),
      h('div', { class: 'sub' }, `${d.user}/${d.device}`),
      h('dl', null, rows.filter(([, v]) => v).map(([k, v]) => [h('dt', null, k), h('dd', null, v)])),
      button('Show today\u2019s track', () => hooks.onHistory(d.user, d.device), { class: 'link' }),
    );
  }

  function fitAll() {
    const points = [];
    for (const d of entries.values()) if (d.marker) points.push(d.marker.getLatLng());
    if (!points.length) return;
    fitted = true;
    fitTo(map, L.latLngBounds(points));
  }

  // focus flies to the device and opens its popup.
  function focus(key) {
    const d = entries.get(key);
    if (!d?.marker) {
      hooks.announce?.(`${d ? nameOf(d) : key} has no location yet.`);
      return;
    }
    hooks.beforeFocus?.();
    map.once('moveend', () => d.marker.openPopup());
    map.flyTo(d.marker.getLatLng(), Math.max(map.getZoom(), FOCUS_ZOOM), { duration: 0.8 });
  }

  function applyDevices(devs) {
    if (!Array.isArray(devs)) return;
    for (const dev of devs) {
      if (!dev?.user || !dev.device) continue;
      const key = `${dev.user}/${dev.device}`;
      const d = entry(key, dev.user, dev.device);
      d.dev = dev;
      d.online = Boolean(dev.online);
      dirty.add(key);
    }
  }

  async function load() {
    clearError();
    let last;
    let devs;
    try {
      [last, devs] = await Promise.all([
        get('/api/0/last'),
        // Online state and devices without a fix; older servers lack it.
        get('/api/v1/devices').catch((err) => {
          if (err instanceof ApiError && err.status === 401) throw err;
          return null;
        }),
      ]);
    } catch (err) {
      if (running && err.status !== 401) showError(describeError('Cannot load the last locations', err), load);
      return;
    }
    if (!running) return;
    applyDevices(devs);
    for (const loc of Array.isArray(last) ? last : []) if (loc) applyLoc(loc);
    drawList();
    if (shown) fitAll();
    socket.start();
  }

  // refreshDevices updates online/offline. The server skips frames for a
  // listener that falls behind, so when a device was heard from after the
  // fix shown, ask for every last position again.
  async function refreshDevices() {
    let devs;
    try {
      devs = await get('/api/v1/devices');
    } catch {
      return; // the next tick tries again; positions still flow
    }
    if (!running) return;
    let missed = false;
    for (const dev of Array.isArray(devs) ? devs : []) {
      const d = entries.get(`${dev?.user}/${dev?.device}`);
      const heard = toUnix(dev?.last_seen);
      const got = d?.loc ? toUnix(d.loc.isorcv) || d.loc.tst : NaN;
      if (heard - got > RESYNC_SLACK_SECS || (Number.isFinite(heard) && !d?.loc)) missed = true;
    }
    applyDevices(devs);
    // last_seen also counts messages that are not locations (and a device
    // may have sent none), so resync at most once a minute.
    if (missed && Date.now() - lastResync > RESYNC_MIN_MS && socket.send('LAST')) lastResync = Date.now();
    flush();
  }

  $('people-fit').addEventListener('click', () => {
    hooks.beforeFocus?.();
    fitAll();
  });
  $('people-filter').addEventListener('input', (event) => {
    filter = event.target.value.trim().toLowerCase();
    for (const key of entries.keys()) dirty.add(key);
    flush();
  });

  return {
    start() {
      running = true;
      load();
      tick = setInterval(() => {
        for (const key of entries.keys()) dirty.add(key);
        for (const d of entries.values()) if (d.marker?.isPopupOpen()) d.marker.getPopup().update();
        flush();
      }, TICK_MS);
      refresh = setInterval(refreshDevices, DEVICES_REFRESH_MS);
    },
    stop() {
      running = false;
      socket.stop();
      clearInterval(tick);
      clearInterval(refresh);
      layer.clearLayers();
      entries.clear();
      pending.clear();
      dirty.clear();
      list.replaceChildren();
      fitted = false;
      $('people-empty').hidden = true;
    },
    show() {
      shown = true;
      layer.addTo(map);
      if (!fitted) fitAll();
      flush();
    },
    hide() {
      shown = false;
      layer.remove();
    },
    // redraw brings the list up to date when it comes into sight.
    redraw: flush,
    // devicesOf lists the devices of user seen so far (for forms).
    devicesOf(user) {
      return [...entries.values()].filter((d) => d.user === user).map((d) => d.device);
    },
    label(user, device) {
      const d = entries.get(`${user}/${device}`);
      return d ? nameOf(d) : user;
    },
  };
}
