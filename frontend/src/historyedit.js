// Cleaning up a track in the history view: hide or delete one point from
// its popup, delete the range shown, and list the range's hidden points to
// show them again (the routes of api/delete.go). Only the owner and admins
// may; others never see the controls, and a refusal shows the server's
// reason.
import L from 'leaflet';
import { del, get, post, query } from './api.js';
import { $, announce, button, clearError, describeError, h, showError } from './ui.js';

const SAME_DEG = 1e-7; // the same coordinate, read back from the store

// canEdit tells whether the signed-in user may delete and hide user's
// history: their own, or anyone's for an admin (as the server decides in
// mayChange; it refuses anything else with a 403 anyway).
export function canEdit(user) {
  const me = document.body.dataset;
  return me.admin === 'true' || (!!user && user === me.user);
}

// pointPath is /api/v1/locations/:user/:device/:tst[/hide|/unhide].
const pointPath = (p, tst, action = '') =>
  `/api/v1/locations/${encodeURIComponent(p.user)}/${encodeURIComponent(p.device)}/${tst}${action}`;

// apiUnix reads the UTC YYYY-MM-DDTHH:MM:SS of a shown range.
const apiUnix = (v) => Date.parse(`${v}Z`) / 1000;

const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;

// exact renders a fix time to the second: what is deleted must be told
// apart from its neighbours.
const exactFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
const exact = (tst) => exactFormat.format(tst * 1000);

// createHistoryEdit wires the controls in #history-edit. hooks.range() is
// the range shown ({user, device, from, to}, or null); hooks.refresh()
// reloads it without moving the map; hooks.renderer is the track's canvas,
// shared so that one canvas takes the clicks on the track and on the
// hidden points.
export function createHistoryEdit(map, hooks) {
  const toggle = $('history-hidden-toggle');
  const list = $('history-hidden');
  const { renderer } = hooks;
  const hiddenLayer = L.featureGroup(); // the hidden points, while listed
  let listed = false;
  let shown = false; // the history view is on screen
  let loads = 0; // tells a stale answer of loadHidden from the newest

  // storedID returns the ID of the visible stored location that q (a point
  // of the track) is, so two fixes of the same second are told apart.
  async function storedID(p, q) {
    const all = await get(pointPath(p, q.tst));
    const visible = (Array.isArray(all) ? all : []).filter((l) => !l.hidden);
    const same = visible.find((l) => Math.abs(l.payload?.lat - q.lat) < SAME_DEG && Math.abs(l.payload?.lon - q.lon) < SAME_DEG);
    const found = same || (visible.length === 1 ? visible[0] : null);
    if (!found) throw new Error('this point is no longer stored (deleted or hidden meanwhile); show the track again');
    return found.id;
  }

  // act runs fn for the buttons of a popup: they are disabled meanwhile,
  // and a failure is shown in the popup's error line.
  async function act(buttons, errorLine, doing, fn) {
    buttons.forEach((b) => { b.disabled = true; });
    errorLine.hidden = true;
    try {
      await fn();
    } catch (err) {
      if (err.status === 401) return;
      errorLine.textContent = describeError(doing, err);
      errorLine.hidden = false;
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  }

  async function setHidden(p, tst, id, hidden) {
    await post(query(pointPath(p, tst, hidden ? '/hide' : '/unhide'), { id }));
  }

  async function afterChange() {
    await hooks.refresh();
    if (listed) await loadHidden();
  }

  // pointControls are the buttons of the popup of q, a point of the track
  // p; null when the user may not change it.
  function pointControls(p, q) {
    if (!canEdit(p.user)) return null;
    const errorLine = h('p', { id: 'history-point-error', class: 'form-error', role: 'alert', hidden: true });
    const when = exact(q.tst);
    const hide = button('Hide point', () => act([hide, remove], errorLine, 'Cannot hide this point', async () => {
      const id = await storedID(p, q);
      await setHidden(p, q.tst, id, true);
      map.closePopup();
      announce(`Point of ${when} hidden.`, {
        label: 'Undo',
        fn: () => setHidden(p, q.tst, id, false).then(afterChange, (err) => {
          if (err.status !== 401) showError(describeError('Cannot show the point again', err));
        }),
      });
      await afterChange();
    }), { id: 'history-point-hide', title: 'Keep the point but leave it out of the map, the API and exports' });
    const remove = button('Delete point', () => act([hide, remove], errorLine, 'Cannot delete this point', async () => {
      if (!window.confirm(`Delete the point of ${p.user}/${p.device} at ${when}?\n\nThis cannot be undone.`)) return;
      const id = await storedID(p, q);
      await del(query(pointPath(p, q.tst), { id }));
      map.closePopup();
      announce(`Point of ${when} deleted.`);
      await afterChange();
    }), { id: 'history-point-delete', class: 'danger' });
    return [h('div', { class: 'popup-actions' }, hide, remove), errorLine];
  }

  // The range: everything the device recorded in it, after a confirmation.
  $('history-delete-range').addEventListener('click', async () => {
    const p = hooks.range();
    if (!p || !canEdit(p.user)) return;
    const from = exact(apiUnix(p.from));
    const to = exact(apiUnix(p.to));
    const ok = window.confirm(`Delete everything ${p.user}/${p.device} recorded from ${from} to ${to}?\n\n` +
      'Its locations (hidden ones too), other messages and fence events in this range are removed for good.');
    if (!ok) return;
    const btn = $('history-delete-range');
    btn.disabled = true;
    try {
      const res = await del(query('/api/v1/locations', p));
      clearError();
      announce(`Deleted ${plural(res?.deleted?.locations ?? 0, 'location')} of ${p.user}/${p.device}.`);
      await afterChange();
    } catch (err) {
      if (err.status !== 401) showError(describeError(`Cannot delete this range of ${p.user}/${p.device}`, err));
    } finally {
      btn.disabled = false;
    }
  });

  // Hidden points: a list in the panel and grey dashed circles on the map.
  toggle.addEventListener('change', () => setListed(toggle.checked));

  function setListed(on) {
    listed = on;
    toggle.checked = on;
    $('history-hidden-box').hidden = !on;
    if (on) {
      loadHidden();
      return;
    }
    loads++;
    hiddenLayer.clearLayers();
    list.replaceChildren();
  }

  async function loadHidden() {
    const p = hooks.range();
    if (!p) return;
    const n = ++loads;
    const summary = $('history-hidden-summary');
    summary.textContent = 'Loading the hidden points…';
    list.setAttribute('aria-busy', 'true');
    let all;
    try {
      all = await get(query('/api/v1/locations/hidden', p));
    } catch (err) {
      if (n !== loads) return;
      list.removeAttribute('aria-busy');
      summary.textContent = err.status === 401 ? '' : describeError('Cannot list the hidden points', err);
      return;
    }
    if (n !== loads) return;
    list.removeAttribute('aria-busy');
    const pts = (Array.isArray(all) ? all : []).filter((l) => Number.isFinite(l.payload?.lat) && Number.isFinite(l.payload?.lon));
    summary.textContent = pts.length ? `${plural(pts.length, 'hidden point')} in this range.` : 'No hidden points in this range.';
    list.replaceChildren(...pts.map((l) => item(p, l)));
    hiddenLayer.clearLayers();
    for (const l of pts) {
      L.circleMarker([l.payload.lat, l.payload.lon], {
        renderer, radius: 5, weight: 2, color: '#5b6670', dashArray: '3 3', fillColor: '#fff', fillOpacity: 0.7,
      }).bindTooltip(`Hidden · ${exact(l.tst)}`).on('click', (e) => {
        L.DomEvent.stopPropagation(e);
        openHidden(p, l);
      }).addTo(hiddenLayer);
    }
    if (shown) hiddenLayer.addTo(map);
  }

  const accuracy = (l) => (Number.isFinite(l.payload?.acc) ? `±${Math.round(l.payload.acc)} m` : '');

  function item(p, l) {
    const when = exact(l.tst);
    return h('li', { dataset: { tst: String(l.tst), id: l.id } },
      button(h('span', { class: 'who' },
        h('span', { class: 'name' }, when),
        h('span', { class: 'sub' }, accuracy(l))), () => openHidden(p, l), { 'aria-label': `Show the hidden point of ${when} on the map` }),
      button('Unhide', () => unhide(p, l), { class: 'history-unhide small', 'aria-label': `Unhide the point of ${when}` }));
  }

  async function unhide(p, l) {
    try {
      await setHidden(p, l.tst, l.id, false);
      map.closePopup();
      announce(`Point of ${exact(l.tst)} shown again.`);
      await afterChange();
    } catch (err) {
      if (err.status !== 401) showError(describeError('Cannot show the point again', err));
    }
  }

  function openHidden(p, l) {
    const acc = accuracy(l);
    const body = h('div', { class: 'popup', id: 'history-hidden-point', dataset: { tst: String(l.tst) } },
      h('strong', null, 'Hidden point'),
      h('dl', null, h('dt', null, 'Time'), h('dd', null, exact(l.tst)), acc && [h('dt', null, 'Accuracy'), h('dd', null, acc)]),
      h('div', { class: 'popup-actions' }, button('Unhide point', () => unhide(p, l), { id: 'history-point-unhide' })));
    L.popup({ offset: [0, -4] }).setLatLng([l.payload.lat, l.payload.lon]).setContent(body).openOn(map);
  }

  return {
    pointControls,
    // setRange is called for each range drawn: the controls show for
    // those who may use them, and an open list follows the range.
    setRange(p) {
      const ok = !!p && canEdit(p.user);
      $('history-edit').hidden = !ok;
      if (!ok) {
        if (listed) setListed(false);
        return;
      }
      if (listed) loadHidden();
    },
    show() {
      shown = true;
      if (listed) hiddenLayer.addTo(map);
    },
    hide() {
      shown = false;
      hiddenLayer.remove();
    },
    stop() {
      setListed(false);
      hiddenLayer.remove();
      $('history-edit').hidden = true;
    },
  };
}
