// Drawing a fence on the map with Leaflet's own map events (no plugin):
//
//   circle:  press at the centre, then click where the edge is (or drag
//            from the centre to the edge and let go);
//   polygon: click each corner; click the first corner again,
//            double-click, or call finish() to close it.
//
// From the keyboard (with the map focused) Enter places a point at the
// middle of the map, which the arrow keys pan; Backspace removes the
// last corner. Escape cancels either.
import L from 'leaflet';

const MIN_RADIUS_M = 5;
const DEFAULT_RADIUS_M = 100; // when finishing a circle before its edge is set
const DRAG_PX = 8; // a press that moves further is a drag
const CLOSE_PX = 12; // a click this close to the first corner closes the polygon
const SAME_PX = 5; // a click this close to the last corner adds nothing (double-clicks)

const STYLE = { color: '#c2410c', weight: 2, dashArray: '6 4', fillOpacity: 0.15, interactive: false };

// startDrawing begins drawing kind ('circle' or 'polygon'). onChange(hint,
// canFinish) tells the page what to say; onDone(shape) gets
// {type:'circle', center, radius} or {type:'polygon', latlngs};
// onCancel() follows cancel() or Escape.
export function startDrawing(map, kind, { onChange, onDone, onCancel }) {
  const container = map.getContainer();
  const preview = L.featureGroup().addTo(map);
  const restore = { dragging: map.dragging.enabled(), dblclick: map.doubleClickZoom.enabled() };
  let active = true;

  // Circle state.
  let centre = null;
  let radius = 0;
  let downAt = null; // where a press began, to tell drags from clicks
  let circle = null;
  // Polygon state.
  const corners = [];
  let guide = null;

  container.classList.add('wh-drawing', `wh-drawing-${kind}`);
  map.doubleClickZoom.disable();
  // Circles are dragged out, so the map must not pan meanwhile; polygons
  // keep panning to reach far corners.
  if (kind === 'circle') map.dragging.disable();
  map.closePopup();

  const px = (latlng) => map.latLngToContainerPoint(latlng);
  const fmtRadius = (m) => (m >= 1000 ? `${(m / 1000).toFixed(2)} km` : `${Math.round(m)} m`);

  function tell() {
    if (kind === 'circle') {
      if (!centre) onChange('Click the centre of the circle (or press Enter on the map for its middle).', false);
      else onChange(`Radius ${fmtRadius(radius)}: click the edge, or press Finish.`, true);
    } else if (corners.length < 3) {
      onChange(`Click the corners of the area (${corners.length} so far).`, false);
    } else {
      onChange(`${corners.length} corners: click the first one, double-click, or press Finish to close.`, true);
    }
  }

  // Circle.
  function setCentre(latlng) {
    centre = latlng;
    radius = 0;
    circle = L.circle(centre, { ...STYLE, radius: 1 }).addTo(preview);
    L.circleMarker(centre, { ...STYLE, dashArray: null, radius: 4, fillOpacity: 1 }).addTo(preview);
    tell();
  }

  function setRadius(latlng) {
    radius = map.distance(centre, latlng);
    circle.setRadius(Math.max(radius, 1));
  }

  function onMouseDown(e) {
    if (kind !== 'circle' || e.originalEvent.button > 0) return;
    if (!centre) {
      setCentre(e.latlng);
      downAt = e.containerPoint;
      return;
    }
    setRadius(e.latlng);
    if (radius >= MIN_RADIUS_M) finishCircle();
  }

  function onMouseMove(e) {
    if (kind === 'circle') {
      if (centre) {
        setRadius(e.latlng);
        tell();
      }
    } else if (corners.length) {
      guide ??= L.polyline([], { ...STYLE, fill: false }).addTo(preview);
      guide.setLatLngs([corners[corners.length - 1], e.latlng]);
    }
  }

  function onMouseUp(e) {
    if (kind !== 'circle' || !centre || !downAt) return;
    const dragged = e.containerPoint.distanceTo(downAt) > DRAG_PX;
    downAt = null;
    if (dragged) {
      setRadius(e.latlng);
      if (radius >= MIN_RADIUS_M) finishCircle();
    }
  }

  function finishCircle() {
    if (!centre) return;
    const r = radius >= MIN_RADIUS_M ? radius : DEFAULT_RADIUS_M;
    done({ type: 'circle', center: centre, radius: Math.round(r) });
  }

  // Polygon.
  function addCorner(latlng) {
    const at = px(latlng);
    if (corners.length >= 3 && at.distanceTo(px(corners[0])) <= CLOSE_PX) {
      finishPolygon();
      return;
    }
    if (corners.length && at.distanceTo(px(corners[corners.length - 1])) <= SAME_PX) return;
    corners.push(latlng);
    redrawPolygon();
  }

  function redrawPolygon() {
    preview.clearLayers();
    guide = null;
    L.polygon(corners, STYLE).addTo(preview);
    corners.forEach((c, i) => {
      const first = i === 0 && corners.length >= 3;
      L.circleMarker(c, { ...STYLE, dashArray: null, radius: first ? 7 : 4, fillOpacity: 1, fillColor: first ? '#fff' : STYLE.color })
        .addTo(preview);
    });
    tell();
  }

  function onClick(e) {
    if (kind === 'polygon') addCorner(e.latlng);
  }

  function onDblClick() {
    if (kind === 'polygon' && corners.length >= 3) finishPolygon();
  }

  function finishPolygon() {
    if (corners.length < 3) return;
    done({ type: 'polygon', latlngs: corners.slice() });
  }

  // Keyboard: the middle of the map is the pointer while it has focus.
  function onMove() {
    if (document.activeElement !== container) return;
    const middle = map.getCenter();
    if (kind === 'circle' && centre) {
      setRadius(middle);
      tell();
    } else if (kind === 'polygon' && corners.length) {
      guide ??= L.polyline([], { ...STYLE, fill: false }).addTo(preview);
      guide.setLatLngs([corners[corners.length - 1], middle]);
    }
  }

  function onKey(e) {
    if (e.key === 'Escape') {
      e.preventDefault();
      cancel();
      return;
    }
    if (document.activeElement !== container) return;
    if (e.key === 'Enter') {
      e.preventDefault();
      const middle = map.getCenter();
      if (kind === 'polygon') addCorner(middle);
      else if (!centre) setCentre(middle);
      else {
        setRadius(middle);
        if (radius >= MIN_RADIUS_M) finishCircle();
      }
    } else if (e.key === 'Backspace' && kind === 'polygon' && corners.length) {
      e.preventDefault();
      corners.pop();
      redrawPolygon();
    }
  }

  const handlers = { mousedown: onMouseDown, mousemove: onMouseMove, mouseup: onMouseUp, click: onClick, dblclick: onDblClick, move: onMove };
  map.on(handlers);
  document.addEventListener('keydown', onKey, true);
  tell();

  function cleanup() {
    active = false;
    map.off(handlers);
    document.removeEventListener('keydown', onKey, true);
    preview.remove();
    container.classList.remove('wh-drawing', `wh-drawing-${kind}`);
    if (restore.dragging) map.dragging.enable();
    // Re-enable after the double-click that closed a polygon has passed.
    if (restore.dblclick) setTimeout(() => map.doubleClickZoom.enable(), 400);
  }

  function done(result) {
    if (!active) return;
    cleanup();
    onDone(result);
  }

  function cancel() {
    if (!active) return;
    cleanup();
    onCancel?.();
  }

  return {
    kind,
    finish() {
      if (kind === 'circle') finishCircle();
      else finishPolygon();
    },
    cancel,
    get active() {
      return active;
    },
  };
}
