// The history view: one device's track over a time range from
// /api/0/locations, drawn on a canvas with a timeline slider, stats and
// download links for the same range. historyedit.js hides and deletes
// points and ranges.
import L from 'leaflet';
import { get, query, request } from './api.js';
import { createHistoryEdit } from './historyedit.js';
import { fitTo } from './mapview.js';
import { fromLocalInput, startOfDay, toApiTime, toLocalInput, trackLength } from './geo.js';
import {
  $, clearError, describeError, fmtDateTime, fmtDuration, fmtTime, h, showError,
} from './ui.js';

const MAX_POINTS = 5000; // the server thins longer tracks to this many
const POINT_MARKERS_MAX = 300; // draw every point as a circle up to this many
const PICK_PX = 10; // a click on the map this close to a point selects it

export function createHistory(map, hooks) {
  const userSelect = $('history-user');
  const deviceSelect = $('history-device');
  const from = $('history-from');
  const to = $('history-to');
  const slider = $('history-slider');
  const stats = $('history-stats');
  // tolerance widens the clickable band around the thin track line.
  const renderer = L.canvas({ tolerance: 8 });
  const layer = L.featureGroup();
  let points = [];
  let cursor = null;
  let listsLoaded = null; // promise of the person list
  let controller = null; // aborts the request in flight
  let shownRange = null;
  const edit = createHistoryEdit(map, {
    renderer,
    range: () => shownRange,
    refresh: () => (shownRange ? load(shownRange, { keepView: true }) : undefined),
  });

  const setState = (state) => {
    document.body.dataset.historyState = state;
    $('history-result').setAttribute('aria-busy', String(state === 'loading'));
  };

  // Lists of people and their devices (/api/0/list).
  function loadUsers() {
    listsLoaded ??= (async () => {
      try {
        const res = await get('/api/0/list');
        const users = Array.isArray(res?.results) ? res.results.map(String) : [];
        const me = document.body.dataset.user;
        userSelect.replaceChildren(...users.map((u) => h('option', { value: u }, u)));
        userSelect.value = users.includes(me) ? me : users[0] || '';
        await loadDevices();
      } catch (err) {
        listsLoaded = null;
        if (err.status !== 401) showError(describeError('Cannot list the people with a history', err), loadUsers);
        throw err;
      }
    })();
    return listsLoaded;
  }

  async function loadDevices(want) {
    const user = userSelect.value;
    deviceSelect.replaceChildren();
    deviceSelect.dataset.user = user;
    if (!user) return;
    try {
      const res = await get(query('/api/0/list', { user }));
      if (userSelect.value !== user) return; // changed meanwhile
      const devices = Array.isArray(res?.results) ? res.results.map(String) : [];
      deviceSelect.replaceChildren(...devices.map((d) => h('option', { value: d }, d)));
      if (want && devices.includes(want)) deviceSelect.value = want;
    } catch (err) {
      if (err.status !== 401) showError(describeError(`Cannot list the devices of ${user}`, err), () => loadDevices(want));
    }
  }

  userSelect.addEventListener('change', () => loadDevices());

  // Quick picks fill in the range and show it.
  function pick(kind) {
    const now = new Date();
    const today = startOfDay(now);
    let start;
    let end;
    if (kind === 'today') [start, end] = [today, new Date(startOfDay(now, 1) - 1000)];
    else if (kind === 'yesterday') [start, end] = [startOfDay(now, -1), new Date(today - 1000)];
    else [start, end] = [new Date(now - 7 * 86400e3), now];
    from.value = toLocalInput(start);
    to.value = toLocalInput(end);
    show();
  }

  $('history-today').addEventListener('click', () => pick('today'));
  $('history-yesterday').addEventListener('click', () => pick('yesterday'));
  $('history-7d').addEventListener('click', () => pick('7d'));
  $('history-form').addEventListener('submit', (event) => {
    event.preventDefault();
    show();
  });

  function params() {
    return {
      user: userSelect.value,
      device: deviceSelect.value,
      from: toApiTime(fromLocalInput(from.value)),
      to: toApiTime(fromLocalInput(to.value)),
    };
  }

  // show fetches and draws the range in the form.
  async function show() {
    // The person may have been set without a change event (scripts).
    if (userSelect.value && deviceSelect.dataset.user !== userSelect.value) await loadDevices();
    if (!userSelect.value || !deviceSelect.value) {
      formError('Choose a person and a device.', userSelect.value ? deviceSelect : userSelect);
      return;
    }
    if (!from.value && !to.value) {
      pick('today');
      return;
    }
    const start = fromLocalInput(from.value);
    const end = fromLocalInput(to.value);
    if (!start || !end) {
      formError('Enter both ends of the time range.', start ? to : from);
      return;
    }
    if (start > end) {
      formError('The range must start before it ends.', from);
      return;
    }
    formError('');
    clearError();
    await load(params());
  }

  // load fetches and draws the track of p ({user, device, from, to}).
  // keepView leaves the map where it is (after hiding or deleting).
  async function load(p, { keepView = false } = {}) {
    controller?.abort();
    controller = new AbortController();
    const { signal } = controller;
    setState('loading');
    $('history-summary').textContent = `Loading the track of ${p.user}/${p.device}…`;
    let res;
    let body;
    try {
      res = await request('GET', query('/api/0/locations', { ...p, format: 'json', max_points: MAX_POINTS }), undefined, { raw: true, signal });
      body = await res.json();
    } catch (err) {
      if (err.name === 'AbortError') return;
      setState('error');
      const why = err.status === 403
        ? `${p.user} does not share the history of ${p.device} with you.`
        : describeError(`Cannot load the track of ${p.user}/${p.device}`, err);
      $('history-summary').textContent = why;
      if (err.status !== 401) showError(why, err.status === 403 ? null : () => load(p, { keepView }));
      return;
    }
    const data = Array.isArray(body?.data) ? body.data : Array.isArray(body) ? body : [];
    const pts = data.filter((q) => Number.isFinite(q?.lat) && Number.isFinite(q?.lon));
    // X-Wherehouse-Points is "kept/total" when the server thinned the track.
    const header = /^(\d+)\/(\d+)$/.exec(res.headers.get('X-Wherehouse-Points') || '');
    const total = header ? Number(header[2]) : Number.isFinite(body?.count) ? body.count : pts.length;
    draw(pts, total, p, keepView);
  }

  function formError(text, field) {
    const el = $('history-error');
    el.textContent = text;
    el.hidden = !text;
    field?.focus();
  }

  function draw(pts, total, p, keepView) {
    layer.clearLayers();
    map.closePopup();
    points = pts;
    shownRange = p;
    setDownloads(p);
    edit.setRange(p);
    $('history-result').hidden = false;
    const km = trackLength(pts) / 1000;
    Object.assign(stats.dataset, { points: String(pts.length), total: String(total), distanceKm: km.toFixed(3) });
    if (!pts.length) {
      setState('empty');
      stats.replaceChildren();
      $('history-summary').textContent = `No locations of ${p.user}/${p.device} in this range.`;
      $('history-timeline').hidden = true;
      cursor = null;
      return;
    }
    const first = pts[0];
    const last = pts[pts.length - 1];
    const kept = total > pts.length ? `${pts.length} of ${total} (thinned for the map)` : String(pts.length);
    const rows = [
      ['Points', kept],
      ['Distance', `${km.toFixed(km < 10 ? 2 : 1)} km`],
      ['Duration', fmtDuration(last.tst - first.tst)],
      ['First', fmtDateTime(first.tst)],
      ['Last', fmtDateTime(last.tst)],
    ];
    stats.replaceChildren(...rows.flatMap(([k, v]) => [h('dt', null, k), h('dd', null, v)]));
    $('history-summary').textContent = `Track of ${p.user}/${p.device}: ${pts.length} points, ${km.toFixed(1)} km.`;

    const latlngs = pts.map((q) => [q.lat, q.lon]);
    const line = L.polyline(latlngs, { renderer, color: '#0b63c4', weight: 4, opacity: 0.85 }).addTo(layer);
    // A click on the track selects a point; it goes no further, so
    // onMapClick does not select one again.
    const picks = (i) => (e) => {
      L.DomEvent.stopPropagation(e);
      select(i ?? nearest(e.latlng).i);
    };
    line.on('click', picks());
    if (pts.length <= POINT_MARKERS_MAX) {
      pts.forEach((q, i) => {
        L.circleMarker([q.lat, q.lon], { renderer, radius: 4, weight: 1, color: '#0b63c4', fillColor: '#fff', fillOpacity: 1 })
          .on('click', picks(i)).addTo(layer);
      });
    }
    L.circleMarker(latlngs[0], { renderer, radius: 7, color: '#fff', weight: 2, fillColor: '#1f9d55', fillOpacity: 1 })
      .bindTooltip('Start').on('click', picks(0)).addTo(layer);
    L.circleMarker(latlngs[latlngs.length - 1], { renderer, radius: 7, color: '#fff', weight: 2, fillColor: '#d64545', fillOpacity: 1 })
      .bindTooltip('End').on('click', picks(pts.length - 1)).addTo(layer);
    cursor = L.circleMarker(latlngs[latlngs.length - 1], {
      renderer, radius: 9, color: '#0b63c4', weight: 3, fillColor: '#ffd43b', fillOpacity: 1, interactive: false,
    }).addTo(layer);

    $('history-timeline').hidden = false;
    slider.max = String(pts.length - 1);
    slider.value = String(pts.length - 1);
    moveCursor(pts.length - 1);
    layer.addTo(map);
    if (!keepView) fitTo(map, line.getBounds(), 17);
    setState('ready');
  }

  // nearest finds the point closest (on screen) to a click on the line:
  // with thousands of points, the line is clickable rather than each point.
  // It returns the point's index i (-1 for none) and its distance d in px.
  function nearest(latlng) {
    const at = map.latLngToLayerPoint(latlng);
    let best = -1;
    let bestD = Infinity;
    for (let i = 0; i < points.length; i++) {
      const d = at.distanceTo(map.latLngToLayerPoint([points[i].lat, points[i].lon]));
      if (d < bestD) [best, bestD] = [i, d];
    }
    return { i: best, d: bestD };
  }

  // onMapClick selects the point nearest a click beside the track, within
  // a few pixels: the drawn points are small targets, on a phone too.
  function onMapClick(e) {
    if (!points.length) return;
    const { i, d } = nearest(e.latlng);
    if (d <= PICK_PX) select(i);
  }

  function describe(q) {
    const num = (v, unit) => (Number.isFinite(v) ? `${Math.round(v)} ${unit}` : '');
    return [
      ['Time', fmtDateTime(q.tst)],
      ['Speed', num(q.vel, 'km/h')],
      ['Accuracy', num(q.acc, 'm')],
      ['Battery', num(q.batt, '%')],
      ['Altitude', num(q.alt, 'm')],
    ].filter(([, v]) => v);
  }

  function select(i) {
    if (i < 0 || !points[i]) return;
    const q = points[i];
    slider.value = String(i);
    moveCursor(i);
    const body = h('div', { class: 'popup', id: 'history-point', dataset: { tst: String(q.tst), index: String(i) } },
      h('strong', null, `Point ${i + 1} of ${points.length}`),
      h('dl', null, describe(q).map(([k, v]) => [h('dt', null, k), h('dd', null, v)])),
      edit.pointControls(shownRange, q));
    L.popup({ offset: [0, -4] }).setLatLng([q.lat, q.lon]).setContent(body).openOn(map);
  }

  function moveCursor(i) {
    const q = points[i];
    if (!q || !cursor) return;
    cursor.setLatLng([q.lat, q.lon]);
    const speed = Number.isFinite(q.vel) ? ` · ${Math.round(q.vel)} km/h` : '';
    const text = `${fmtTime(q.tst)}${speed}`;
    $('history-slider-time').textContent = text;
    slider.setAttribute('aria-valuetext', `${fmtDateTime(q.tst)}${speed}, point ${i + 1} of ${points.length}`);
  }

  slider.addEventListener('input', () => {
    map.closePopup();
    moveCursor(Number(slider.value));
  });
  $('history-follow').addEventListener('click', () => {
    const q = points[Number(slider.value)];
    if (q) map.panTo([q.lat, q.lon]);
  });

  function setDownloads(p) {
    const day = p.from.slice(0, 10);
    for (const format of ['gpx', 'geojson', 'csv']) {
      const a = $(`download-${format}`);
      a.href = query('/api/0/locations', { ...p, format });
      a.download = `${p.user}-${p.device}-${day}.${format}`;
    }
  }

  return {
    show() {
      layer.addTo(map);
      map.on('click', onMapClick);
      edit.show();
      loadUsers().catch(() => {});
      if (points.length && shownRange) fitTo(map, layer.getBounds(), 17);
    },
    hide() {
      layer.remove();
      map.off('click', onMapClick);
      edit.hide();
    },
    // open shows today's track of user/device.
    async open(user, device) {
      hooks.setView('history');
      try {
        await loadUsers();
      } catch {
        return;
      }
      if (![...userSelect.options].some((o) => o.value === user)) userSelect.append(h('option', { value: user }, user));
      userSelect.value = user;
      await loadDevices(device);
      if (deviceSelect.value !== device) deviceSelect.append(h('option', { value: device }, device));
      deviceSelect.value = device;
      pick('today');
    },
    stop() {
      controller?.abort();
      edit.stop();
      layer.clearLayers();
      layer.remove();
      points = [];
      cursor = null;
      shownRange = null;
      listsLoaded = null;
      userSelect.replaceChildren();
      deviceSelect.replaceChildren();
      $('history-result').hidden = true;
      delete document.body.dataset.historyState;
    },
  };
}
