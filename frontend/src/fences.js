// The fences view: the user's geofences (GeoJSON Features from
// /api/v1/fences) on the map and in a list, drawn by hand (draw.js) and
// saved with a name and rules; who is inside shows in each fence's popup.
import L from 'leaflet';
import { del, get, post, put } from './api.js';
import { startDrawing } from './draw.js';
import { fitTo } from './mapview.js';
import { $, ago, announce, button, clearError, describeError, fmtDateTime, h, showError, toUnix } from './ui.js';

const FENCE_STYLE = { color: '#7c3aed', weight: 2, fillOpacity: 0.12 };
const PENDING_STYLE = { color: '#c2410c', weight: 2, fillOpacity: 0.2, interactive: false };

// Properties the form does not show, kept as they are when a fence is
// edited (PUT replaces the whole definition).
const KEPT = ['devices', 'hysteresis', 'max_accuracy'];

const idOf = (f) => String(f?.id ?? f?.properties?.id ?? '');
const isCircle = (f) => f?.geometry?.type === 'Point';

function describeRules(p) {
  const parts = [];
  if (p.dwell > 0) parts.push(`enter after ${p.dwell} s`);
  if (p.leave_after > 0) parts.push(`leave after ${p.leave_after} s`);
  if (p.shared) parts.push('shared');
  if (Array.isArray(p.devices) && p.devices.length) parts.push(`only ${p.devices.join(', ')}`);
  return parts.join(' · ');
}

function describeShape(f) {
  if (isCircle(f)) return `circle, ${Math.round(f.properties?.radius || 0)} m`;
  return f?.geometry?.type === 'MultiPolygon' ? 'areas' : 'area';
}

// circleFeature/polygonFeature turn a drawn shape into GeoJSON
// ([lon, lat] order; rings closed, as RFC 7946 asks).
function shapeGeometry(shape) {
  if (shape.type === 'circle') return { type: 'Point', coordinates: [shape.center.lng, shape.center.lat] };
  const ring = shape.latlngs.map((p) => [p.lng, p.lat]);
  ring.push(ring[0]);
  return { type: 'Polygon', coordinates: [ring] };
}

export function createFences(map, hooks) {
  const list = $('fences');
  const layer = L.featureGroup();
  const fences = new Map(); // id → { feature, shape (Leaflet layer), item }
  let loaded = false;
  let loading = null;
  let drawing = null; // the drawing in progress
  let pending = null; // { shape, layer }: drawn, not yet saved
  let editing = null; // id of the fence in the form

  // Loading and listing.
  function load() {
    loading ??= (async () => {
      try {
        const fc = await get('/api/v1/fences');
        fences.forEach((f) => f.shape.remove());
        fences.clear();
        list.replaceChildren();
        for (const f of Array.isArray(fc?.features) ? fc.features : []) upsert(f);
        loaded = true;
        updateEmpty();
      } catch (err) {
        if (err.status !== 401) showError(describeError('Cannot load the fences', err), load);
      } finally {
        loading = null;
      }
    })();
    return loading;
  }

  function updateEmpty() {
    $('fences-empty').hidden = !loaded || fences.size > 0;
  }

  function makeShape(f) {
    let shape;
    if (isCircle(f)) {
      const [lon, lat] = f.geometry.coordinates;
      shape = L.circle([lat, lon], { ...FENCE_STYLE, radius: Number(f.properties?.radius) || 1 });
    } else {
      shape = L.geoJSON(f.geometry, { style: FENCE_STYLE });
    }
    // The content is made on each opening and then filled in, so it is an
    // element (a function would be called again by popup.update()).
    shape.bindPopup(h('div'), { maxWidth: 300 });
    shape.on('popupopen', (e) => {
      // A click while drawing belongs to the drawing, not the popup.
      if (drawing?.active) {
        shape.closePopup();
        return;
      }
      const content = popupContent(idOf(f));
      e.popup.setContent(content);
      loadOccupants(idOf(f), content, e.popup);
    });
    shape.bindTooltip(f.properties?.name || '', { direction: 'center', className: 'fence-label', permanent: false });
    return shape;
  }

  function upsert(f) {
    const id = idOf(f);
    if (!id) return;
    const old = fences.get(id);
    old?.shape.remove();
    const entry = { feature: f, shape: makeShape(f), item: old?.item || h('li', { dataset: { fenceId: id } }) };
    entry.shape.addTo(layer);
    fences.set(id, entry);
    drawItem(entry);
    if (!old) {
      const name = (f.properties?.name || '').toLowerCase();
      const next = [...list.children].find((li) => (fences.get(li.dataset.fenceId)?.feature.properties?.name || '').toLowerCase() > name);
      list.insertBefore(entry.item, next || null);
    }
    updateEmpty();
  }

  function drawItem(entry) {
    const f = entry.feature;
    const p = f.properties || {};
    const id = idOf(f);
    const me = document.body.dataset.user;
    const owner = p.owner && p.owner !== me ? ` (${p.owner})` : '';
    const rules = describeRules(p);
    entry.item.replaceChildren(
      button('', () => focusFence(id), { class: 'fence-show' }),
      h('div', { class: 'actions' },
        button('Edit', () => edit(id), { class: 'fence-edit', 'aria-label': `Edit ${p.name}` }),
        button('Delete', () => remove(id), { class: 'fence-delete', 'aria-label': `Delete ${p.name}` })),
    );
    entry.item.firstChild.append(
      h('span', { class: 'name' }, `${p.name || id}${owner}`),
      h('span', { class: 'sub' }, [describeShape(f), rules].filter(Boolean).join(' · ')),
    );
  }

  function focusFence(id) {
    const entry = fences.get(id);
    if (!entry) return;
    hooks.beforeFocus?.();
    fitTo(map, entry.shape.getBounds(), 17);
    entry.shape.openPopup(entry.shape.getBounds().getCenter());
  }

  function popupContent(id) {
    const entry = fences.get(id);
    const p = entry?.feature.properties || {};
    return h('div', { class: 'popup', dataset: { fenceId: id } },
      h('strong', null, p.name || id),
      h('div', { class: 'sub' }, [describeShape(entry?.feature), describeRules(p)].filter(Boolean).join(' · ')),
      h('h3', null, 'Inside now'),
      h('ul', { class: 'occupants' }, h('li', null, 'Loading…')));
  }

  async function loadOccupants(id, content, popup) {
    let items;
    try {
      const occ = await get(`/api/v1/fences/${encodeURIComponent(id)}/occupants`);
      items = (Array.isArray(occ) ? occ : []).map((o) => {
        const since = toUnix(o.since);
        const when = Number.isFinite(since) ? ` since ${fmtDateTime(since)} (${ago(since)})` : '';
        return h('li', null, `${o.user}/${o.device}${when}`);
      });
      if (!items.length) items = [h('li', { class: 'muted' }, 'Nobody')];
    } catch (err) {
      items = [h('li', { class: 'muted' }, `Cannot tell: ${err.message}`)];
    }
    content.querySelector('.occupants').replaceChildren(...items);
    if (popup.isOpen()) popup.update();
  }

  // Drawing.
  function draw(kind, event) {
    drawing?.cancel();
    clearPending();
    setFormError('');
    $('draw-bar').hidden = false;
    hooks.collapsePanel?.();
    drawing = startDrawing(map, kind, {
      onChange(hint, canFinish) {
        $('draw-hint').textContent = hint;
        $('fence-finish').disabled = !canFinish;
      },
      onDone(shape) {
        endDrawing();
        setPending(shape);
      },
      onCancel() {
        endDrawing();
        announce('Drawing cancelled.');
        $(`fence-draw-${kind}`).focus();
      },
    });
    // From the keyboard (a click without a pointer), go to the map so
    // Enter places points.
    if (event?.detail === 0) map.getContainer().focus();
  }

  function endDrawing() {
    drawing = null;
    $('draw-bar').hidden = true;
    $('fence-finish').disabled = true;
    hooks.expandPanel?.();
  }

  function setPending(shape) {
    clearPending();
    const shapeLayer = shape.type === 'circle'
      ? L.circle(shape.center, { ...PENDING_STYLE, radius: shape.radius })
      : L.polygon(shape.latlngs, PENDING_STYLE);
    pending = { shape, layer: shapeLayer.addTo(map) };
    showRadius(shape.type === 'circle' ? shape.radius : null);
    $('fence-shape').textContent = shape.type === 'circle'
      ? `New circle drawn (${shape.radius} m). Name it and save.`
      : `New area with ${shape.latlngs.length} corners drawn. Name it and save.`;
    $('fence-name').focus();
  }

  function clearPending() {
    pending?.layer.remove();
    pending = null;
  }

  function showRadius(radius) {
    $('fence-radius-row').hidden = radius == null;
    $('fence-radius').value = radius == null ? '' : String(Math.round(radius));
  }

  $('fence-radius').addEventListener('input', () => {
    const r = Number($('fence-radius').value);
    if (pending?.shape.type === 'circle' && r > 0) pending.layer.setRadius(r);
  });

  // The form: new fence, or editing one.
  function edit(id) {
    const entry = fences.get(id);
    if (!entry) return;
    drawing?.cancel();
    clearPending();
    editing = id;
    const p = entry.feature.properties || {};
    $('fence-form-title').textContent = `Edit ${p.name || id}`;
    $('fence-shape').textContent = 'Draw a new circle or area to change the shape, or keep it.';
    $('fence-name').value = p.name || '';
    $('fence-dwell').value = p.dwell > 0 ? String(p.dwell) : '';
    $('fence-leave-after').value = p.leave_after > 0 ? String(p.leave_after) : '';
    $('fence-shared').checked = Boolean(p.shared);
    showRadius(isCircle(entry.feature) ? p.radius : null);
    $('fence-reset').hidden = false;
    focusFence(id);
    $('fence-name').focus();
  }

  function resetForm() {
    editing = null;
    clearPending();
    $('fence-form').reset();
    $('fence-form-title').textContent = 'New fence';
    $('fence-shape').textContent = 'Draw a circle or an area on the map, then name it.';
    showRadius(null);
    setFormError('');
    $('fence-reset').hidden = true;
  }

  function setFormError(text, field) {
    $('fence-error').textContent = text;
    $('fence-error').hidden = !text;
    if (field) field.focus();
  }

  // seconds reads an optional whole number of seconds; NaN if invalid.
  function seconds(input) {
    const v = input.value.trim();
    if (!v) return 0;
    const n = Number(v);
    return Number.isInteger(n) && n >= 0 ? n : NaN;
  }

  async function save(event) {
    event.preventDefault();
    const name = $('fence-name').value.trim();
    const dwell = seconds($('fence-dwell'));
    const leaveAfter = seconds($('fence-leave-after'));
    const old = editing ? fences.get(editing)?.feature : null;
    if (!pending && !old) return setFormError('Draw the fence on the map first: a circle or an area.', $('fence-draw-circle'));
    if (!name) return setFormError('Give the fence a name.', $('fence-name'));
    if (Number.isNaN(dwell)) return setFormError('Enter after: a whole number of seconds.', $('fence-dwell'));
    if (Number.isNaN(leaveAfter)) return setFormError('Leave after: a whole number of seconds.', $('fence-leave-after'));
    const geometry = pending ? shapeGeometry(pending.shape) : old.geometry;
    const properties = {};
    for (const k of KEPT) if (old?.properties?.[k] != null) properties[k] = old.properties[k];
    Object.assign(properties, { name, dwell, leave_after: leaveAfter, shared: $('fence-shared').checked });
    if (geometry.type === 'Point') {
      const r = Number($('fence-radius').value);
      if (!(r > 0)) return setFormError('The radius must be more than 0 m.', $('fence-radius'));
      properties.radius = r;
    }
    setFormError('');
    const feature = { type: 'Feature', geometry, properties };
    const submit = $('fence-save');
    submit.disabled = true;
    try {
      const saved = editing
        ? await put(`/api/v1/fences/${encodeURIComponent(editing)}`, feature)
        : await post('/api/v1/fences', feature);
      clearError();
      upsert(saved?.type === 'Feature' ? saved : { ...feature, id: editing });
      announce(`Fence \u201c${name}\u201d saved.`);
      resetForm();
    } catch (err) {
      if (err.status !== 401) setFormError(describeError('Cannot save the fence', err));
    } finally {
      submit.disabled = false;
    }
  }

  async function remove(id) {
    const entry = fences.get(id);
    if (!entry) return;
    const f = entry.feature;
    const name = f.properties?.name || id;
    try {
      await del(`/api/v1/fences/${encodeURIComponent(id)}`);
    } catch (err) {
      if (err.status === 404) {
        // Gone already (deleted elsewhere): drop it here too.
      } else {
        if (err.status !== 401) showError(describeError(`Cannot delete \u201c${name}\u201d`, err), () => remove(id));
        return;
      }
    }
    entry.shape.remove();
    entry.item.remove();
    fences.delete(id);
    if (editing === id) resetForm();
    updateEmpty();
    announce(`Fence \u201c${name}\u201d deleted.`, { label: 'Undo', fn: () => restore(f) });
    $('fence-draw-circle').focus();
  }

  // restore creates a deleted fence again (with a new id).
  async function restore(f) {
    const properties = { ...f.properties };
    for (const k of ['id', 'owner', 'created']) delete properties[k];
    try {
      upsert(await post('/api/v1/fences', { type: 'Feature', geometry: f.geometry, properties }));
      announce(`Fence \u201c${properties.name}\u201d restored.`);
    } catch (err) {
      if (err.status !== 401) showError(describeError('Cannot restore the fence', err), () => restore(f));
    }
  }

  $('fence-draw-circle').addEventListener('click', (e) => draw('circle', e));
  $('fence-draw-polygon').addEventListener('click', (e) => draw('polygon', e));
  $('fence-finish').addEventListener('click', () => drawing?.finish());
  $('fence-cancel').addEventListener('click', () => drawing?.cancel());
  $('fence-form').addEventListener('submit', save);
  $('fence-reset').addEventListener('click', () => {
    resetForm();
    $('fence-name').focus();
  });

  return {
    show() {
      layer.addTo(map);
      if (pending) pending.layer.addTo(map);
      load();
    },
    hide() {
      drawing?.cancel();
      layer.remove();
      pending?.layer.remove();
    },
    stop() {
      drawing?.cancel();
      resetForm();
      layer.clearLayers();
      layer.remove();
      fences.clear();
      list.replaceChildren();
      loaded = false;
      updateEmpty();
    },
    nameOf(id) {
      return fences.get(id)?.feature.properties?.name;
    },
  };
}
