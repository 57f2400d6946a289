// The wherehouse web map: sign-in, then four views over one Leaflet map.
// Plain ES modules; build.mjs bundles them with Leaflet into dist/.
//
//   api.js      fetch with the session cookie and CSRF token; WebSockets
//   login.js    the sign-in form and /api/v1/session
//   mapview.js  the map, its tiles, fitting beside the panel
//   live.js     last positions, the people list, /ws/last
//   history.js  a device's track, timeline, stats, downloads;
//               historyedit.js hides and deletes its points and ranges
//   fences.js   geofences: list, map layers, form; draw.js draws them
//   events.js   recent enter/leave events, /ws/events
//   sharing.js  shares granted and received
//   ui.js, geo.js  DOM, formatting, distance and time helpers
import 'leaflet/dist/leaflet.css';
import './style.css';
import { get, onSessionLost, setCsrf } from './api.js';
import { createEvents } from './events.js';
import { createFences } from './fences.js';
import { createHistory } from './history.js';
import { createLive } from './live.js';
import { currentSession, hideLogin, initLogin, showLogin, signOut } from './login.js';
import { createMap, setTiles } from './mapview.js';
import { createSharing } from './sharing.js';
import { $, announce, clearError, describeError, initMessages, isNarrow, showError } from './ui.js';

const VIEWS = ['live', 'history', 'fences', 'sharing'];

const map = createMap();
initMessages();

let session = null;
let view = null;
let configLoaded = false;

// Panel: on phones it collapses to its header so the map shows.
function setPanel(open) {
  $('panel').dataset.collapsed = String(!open);
  $('panel-body').hidden = !open;
  const toggle = $('panel-toggle');
  toggle.setAttribute('aria-expanded', String(open));
  toggle.textContent = open ? 'Hide' : 'Show';
  toggle.title = open ? 'Hide the panel' : 'Show the panel';
  if (open) live.redraw();
}
$('panel-toggle').addEventListener('click', () => setPanel($('panel-body').hidden));
const collapseOnPhone = () => {
  if (isNarrow()) setPanel(false);
};

const live = createLive(map, {
  onHistory: (user, device) => track.open(user, device),
  announce,
  beforeFocus: collapseOnPhone,
});
const track = createHistory(map, {
  setView: (name) => {
    setView(name);
    setPanel(true);
  },
});
const fences = createFences(map, {
  collapsePanel: collapseOnPhone,
  expandPanel: () => setPanel(true),
  beforeFocus: collapseOnPhone,
});
const events = createEvents(map, { fenceName: (id) => fences.nameOf(id), beforeFocus: collapseOnPhone });
const sharing = createSharing({ devicesOf: (user) => live.devicesOf(user) });

// Which parts draw on the map in each view.
const PARTS = {
  live: [live],
  history: [track],
  fences: [live, fences, events],
  sharing: [live, sharing],
};

function setView(name) {
  if (!VIEWS.includes(name)) name = 'live';
  if (!session) return;
  const before = PARTS[view] || [];
  const after = PARTS[name];
  for (const part of before) if (!after.includes(part)) part.hide();
  view = name;
  document.body.dataset.view = name;
  for (const section of document.querySelectorAll('#panel-body [data-view]')) section.hidden = section.dataset.view !== name;
  for (const v of VIEWS) {
    const nav = $(`nav-${v}`);
    if (v === name) nav.setAttribute('aria-current', 'page');
    else nav.removeAttribute('aria-current');
  }
  for (const part of after) part.show();
  window.history.replaceState(null, '', `#/${name}`);
}

for (const v of VIEWS) {
  $(`nav-${v}`).addEventListener('click', () => {
    setView(v);
    setPanel(true);
  });
}

// Tiles come from the server's config (OpenStreetMap if it cannot be read).
async function loadConfig() {
  try {
    const config = await get('/api/v1/config', { quiet401: true });
    configLoaded = true;
    setTiles(map, config);
    if (config?.version) $('version').textContent = `wherehouse ${config.version}`;
  } catch (err) {
    if (err.status === 401) return; // signed out meanwhile; start() asks again
    configLoaded = true;
    setTiles(map, null);
  }
}

function start(s) {
  if (!s?.user) {
    showLogin('The server sent no session. Try again.');
    return;
  }
  session = s;
  setCsrf(s.csrf);
  document.body.dataset.user = s.user;
  if (s.admin) document.body.dataset.admin = 'true';
  $('app-user').textContent = s.user;
  hideLogin();
  clearError();
  if (!configLoaded) loadConfig();
  setPanel(!isNarrow());
  live.start();
  setView(/^#\/(\w+)$/.exec(location.hash)?.[1] || 'live');
}

function stop() {
  for (const part of [live, track, fences, events, sharing]) {
    part.hide();
    part.stop();
  }
  session = null;
  view = null;
  setCsrf('');
  delete document.body.dataset.user;
  delete document.body.dataset.admin;
  delete document.body.dataset.view;
  clearError();
  announce('');
  map.closePopup();
}

onSessionLost(() => {
  if (!session) return;
  stop();
  showLogin('Your session has ended. Sign in again.');
});

initLogin(start);

$('logout').addEventListener('click', async () => {
  try {
    await signOut();
  } catch (err) {
    if (err.status !== 401) {
      showError(describeError('Cannot sign out', err), () => $('logout').click());
      return;
    }
  }
  stop();
  showLogin();
});

async function boot() {
  let s;
  try {
    s = await currentSession();
  } catch (err) {
    showLogin(`Cannot check whether you are signed in: ${err.message}.`);
    return;
  }
  if (s) start(s);
  else showLogin();
}

boot();
