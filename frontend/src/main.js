// The wherehouse web map: the last location of every device the signed-in
// user may see, from /api/0/last, kept live over the /ws/last WebSocket.
// Plain ES modules; build.mjs bundles this with Leaflet into dist/.
import L from 'leaflet';
import 'leaflet/dist/leaflet.css';
import './style.css';

// The only third-party requests the page makes are for these tiles.
const TILE_URL = 'https://tile.openstreetmap.org/{z}/{x}/{y}.png';
const TILE_ATTRIBUTION =
  '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors';

const LAST_URL = '/api/0/last';
const WS_PATH = '/ws/last';
const RECONNECT_MIN_MS = 1000;
const RECONNECT_MAX_MS = 30000;
const WS_FAILURES_BEFORE_NOTICE = 3;
const FOCUS_ZOOM = 15;
const TICK_MS = 30000;

const $ = (id) => document.getElementById(id);
const list = $('people');

const map = L.map('map', { worldCopyJump: true }).setView([20, 0], 2);
L.tileLayer(TILE_URL, { maxZoom: 19, attribution: TILE_ATTRIBUTION }).addTo(map);

if (window.matchMedia('(max-width: 600px)').matches) $('panel').open = false;

// devices maps a device key to { loc, marker, circle, item }.
const devices = new Map();
let fitted = false;
let emptyNotice = false;

// A device is keyed by its topic, as the Recorder does, else user/device.
const keyOf = (loc) => loc.topic || `${loc.username}/${loc.device}`;
const titleOf = (loc) => loc.name || `${loc.username}/${loc.device}`;
const labelOf = (loc) => loc.tid || String(loc.device || loc.username || '?').slice(0, 2);
const hasFace = (loc) => typeof loc.face === 'string' && /^[A-Za-z0-9+/=\s]+$/.test(loc.face);

// colorOf gives each device a stable colour so markers are told apart.
function colorOf(key) {
  let hash = 0;
  for (const c of key) hash = (hash * 31 + c.codePointAt(0)) >>> 0;
  return `hsl(${hash % 360} 60% 38%)`;
}

const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
const UNITS = [
  ['year', 31536000], ['month', 2592000], ['week', 604800], ['day', 86400],
  ['hour', 3600], ['minute', 60], ['second', 1],
];

// ago says how long ago the Unix time tst was ("5 minutes ago").
function ago(tst) {
  if (!Number.isFinite(tst)) return '';
  const secs = Math.min(tst - Date.now() / 1000, 0); // a clock running ahead means now
  const [unit, size] = UNITS.find(([, s]) => Math.abs(secs) >= s) || UNITS[UNITS.length - 1];
  return rtf.format(Math.trunc(secs / size), unit);
}

function h(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text != null) node.textContent = text;
  return node;
}

// avatar is the round badge used on the map and in the list: the card's
// face if there is one, else the tracker ID.
function avatar(loc, key) {
  const span = h('span', 'avatar');
  span.style.setProperty('--color', colorOf(key));
  if (hasFace(loc)) {
    const img = h('img');
    img.src = `data:image/jpeg;base64,${loc.face}`;
    img.alt = '';
    span.append(img);
  } else {
    span.textContent = labelOf(loc);
  }
  return span;
}

const iconOf = (loc, key) =>
  L.divIcon({ html: avatar(loc, key), className: 'marker', iconSize: [36, 36], popupAnchor: [0, -18] });

function popupContent(loc) {
  const div = h('div', 'popup');
  div.append(h('strong', null, titleOf(loc)));
  if (loc.name) div.append(h('div', 'sub', `${loc.username}/${loc.device}`));
  const num = (v, unit) => (Number.isFinite(v) ? `${v} ${unit}` : '');
  const rows = [
    ['Seen', ago(loc.tst)],
    ['Time', loc.isotst || ''],
    ['Battery', num(loc.batt, '%')],
    ['Speed', num(loc.vel, 'km/h')],
    ['Accuracy', num(loc.acc, 'm')],
    ['Status', loc.status || ''],
  ];
  const dl = h('dl');
  for (const [term, value] of rows) {
    if (value) dl.append(h('dt', null, term), h('dd', null, value));
  }
  div.append(dl);
  return div;
}

// listItem makes the device's button in the side list.
function listItem(key) {
  const li = h('li');
  const button = h('button');
  button.type = 'button';
  button.addEventListener('click', () => focusDevice(key));
  li.append(button);
  return li;
}

// renderItem fills in the device's list entry, kept sorted by name.
function renderItem(d, key) {
  const sort = titleOf(d.loc).toLowerCase();
  if (d.item.dataset.sort !== sort) {
    d.item.dataset.sort = sort;
    const next = [...list.children].find((li) => li !== d.item && li.dataset.sort > sort);
    list.insertBefore(d.item, next || null);
  }
  const who = h('span', 'who');
  who.append(h('span', 'name', titleOf(d.loc)), h('span', 'when', ago(d.loc.tst)));
  d.item.firstChild.replaceChildren(avatar(d.loc, key), who);
}

// upsert adds a device or moves its marker in place.
function upsert(loc) {
  if (!loc || !Number.isFinite(loc.lat) || !Number.isFinite(loc.lon)) return;
  const key = keyOf(loc);
  let d = devices.get(key);
  if (d && loc.tst < d.loc.tst) return; // an older fix than the one shown
  // A frame without the card's face and name keeps the ones we have.
  loc = { face: d?.loc.face, name: d?.loc.name, ...loc };
  const at = [loc.lat, loc.lon];
  const radius = Number.isFinite(loc.acc) && loc.acc > 0 ? loc.acc : 0;
  if (!d) {
    d = {
      loc,
      marker: L.marker(at, { icon: iconOf(loc, key), title: titleOf(loc), riseOnHover: true }).addTo(map),
      circle: L.circle(at, { radius, weight: 1, interactive: false, color: colorOf(key) }).addTo(map),
      item: listItem(key),
    };
    const entry = d;
    d.marker.bindPopup(() => popupContent(entry.loc));
    devices.set(key, d);
    $('count').textContent = String(devices.size);
  } else {
    const old = d.loc;
    d.loc = loc;
    d.marker.setLatLng(at);
    d.circle.setLatLng(at).setRadius(radius);
    if (old.tid !== loc.tid || old.face !== loc.face || titleOf(old) !== titleOf(loc)) {
      d.marker.options.title = titleOf(loc);
      d.marker.setIcon(iconOf(loc, key));
    }
    if (d.marker.isPopupOpen()) d.marker.getPopup().update();
  }
  renderItem(d, key);
  if (emptyNotice) {
    emptyNotice = false;
    showMessage('');
  }
}

function fitAll() {
  const points = [...devices.values()].map((d) => d.marker.getLatLng());
  if (!points.length) return;
  fitted = true;
  // Keep markers out from under the list where it sits beside the map.
  const panel = $('panel');
  const right = panel.open && window.innerWidth > 600 ? panel.offsetWidth + 24 : 48;
  map.fitBounds(L.latLngBounds(points), {
    paddingTopLeft: [48, 48],
    paddingBottomRight: [right, 48],
    maxZoom: FOCUS_ZOOM,
  });
}

function focusDevice(key) {
  const d = devices.get(key);
  if (!d) return;
  map.once('moveend', () => d.marker.openPopup());
  map.flyTo(d.marker.getLatLng(), Math.max(map.getZoom(), FOCUS_ZOOM), { duration: 0.8 });
}

function showMessage(text, retry = false) {
  $('message-text').textContent = text;
  $('retry').hidden = !retry;
  $('message').classList.toggle('error', retry);
  $('message').hidden = !text;
}

function setLive(state, text) {
  const live = $('live');
  live.dataset.state = state;
  live.title = `Live updates: ${text}`;
  live.firstElementChild.textContent = live.title;
}

// load fetches the last positions once, then keeps them live. The server
// answers 401 with a Basic challenge, so the browser asks for a login.
async function load() {
  showMessage('Loading…');
  let res;
  try {
    res = await fetch(new URL(LAST_URL, location.origin), {
      credentials: 'same-origin',
      headers: { Accept: 'application/json' },
    });
  } catch (err) {
    showMessage(`Cannot reach the server: ${err.message}. Check the connection and try again.`, true);
    return;
  }
  if (res.status === 401) {
    showMessage('Sign-in needed: the server did not accept a user name and password. Try again to sign in.', true);
    return;
  }
  if (res.status === 403) {
    showMessage('This account may not see locations (403 Forbidden).', true);
    return;
  }
  if (!res.ok) {
    showMessage(`The server answered ${res.status} ${res.statusText}. Try again later.`, true);
    return;
  }
  let locs;
  try {
    locs = await res.json();
  } catch {
    showMessage('The server sent something that is not JSON.', true);
    return;
  }
  showMessage('');
  for (const loc of Array.isArray(locs) ? locs : []) upsert(loc);
  if (devices.size) {
    fitAll();
  } else {
    emptyNotice = true;
    showMessage('No locations yet. Point the OwnTracks app at this server and devices appear here.');
  }
  if (!liveStarted) {
    liveStarted = true;
    connect();
  }
}

let liveStarted = false;
let delay = RECONNECT_MIN_MS;
let failures = 0;

// connect opens /ws/last and asks for the last positions ("LAST", as in
// the Recorder); the server then pushes every new location. The browser
// sends the same credentials as for the fetch above.
function connect() {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(`${proto}//${location.host}${WS_PATH}`);
  let opened = false;
  setLive('connecting', 'connecting');
  ws.addEventListener('open', () => {
    opened = true;
    if (failures >= WS_FAILURES_BEFORE_NOTICE) showMessage('');
    failures = 0;
    delay = RECONNECT_MIN_MS;
    setLive('live', 'connected');
    ws.send('LAST');
  });
  ws.addEventListener('message', (event) => {
    let msg;
    try {
      msg = JSON.parse(event.data);
    } catch {
      return;
    }
    if (msg?._type !== 'location') return;
    upsert(msg);
    if (!fitted) fitAll();
  });
  ws.addEventListener('close', () => {
    if (!opened && ++failures === WS_FAILURES_BEFORE_NOTICE) {
      showMessage('Live updates are unavailable (the server refused /ws/last); still retrying. Positions may be out of date.');
    }
    const wait = delay * (0.75 + Math.random() / 2);
    setLive('offline', `offline, retrying in ${Math.round(wait / 1000)} s`);
    setTimeout(connect, wait);
    delay = Math.min(delay * 2, RECONNECT_MAX_MS);
  });
}

$('retry').addEventListener('click', load);

// Keep "5 minutes ago" true.
setInterval(() => {
  for (const d of devices.values()) {
    d.item.querySelector('.when').textContent = ago(d.loc.tst);
    if (d.marker.isPopupOpen()) d.marker.getPopup().update();
  }
}, TICK_MS);

load();
