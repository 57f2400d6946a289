// The Leaflet map every view draws on.
import L from 'leaflet';
import { $, isNarrow } from './ui.js';

// Used when /api/v1/config cannot be read. Tiles are the only requests
// the page makes to another host.
const OSM_URL = 'https://tile.openstreetmap.org/{z}/{x}/{y}.png';
const OSM_ATTRIBUTION =
  '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors';

export const FOCUS_ZOOM = 15;

// createMap makes the map. preferCanvas draws circles and tracks on one
// canvas, which keeps 500 accuracy circles smooth; markers stay DOM
// elements. window.whMap is for browser tests and the console.
export function createMap() {
  const map = L.map('map', { preferCanvas: true, worldCopyJump: true }).setView([20, 0], 2);
  window.whMap = map;
  return map;
}

let tiles = null;

// setTiles (re)creates the tile layer from the server's config.
export function setTiles(map, config) {
  const url = typeof config?.tile_url === 'string' && config.tile_url ? config.tile_url : OSM_URL;
  const attribution = typeof config?.tile_attribution === 'string' && config.tile_url ? config.tile_attribution : OSM_ATTRIBUTION;
  if (tiles && tiles._url === url) return;
  tiles?.remove();
  tiles = L.tileLayer(url, { maxZoom: 19, attribution }).addTo(map);
}

// fitOptions keeps what is fitted out from under the panel.
export function fitOptions(maxZoom = FOCUS_ZOOM) {
  const panel = $('panel');
  const box = panel.getBoundingClientRect();
  if (isNarrow()) {
    // The panel is a sheet along the bottom; fit above it, but into no
    // less than 160 px.
    const sheet = Math.max(0, Math.min(window.innerHeight - box.top, window.innerHeight - 160 - 40 - 20));
    return { paddingTopLeft: [30, 40], paddingBottomRight: [30, sheet + 20], maxZoom };
  }
  return { paddingTopLeft: [50, 40], paddingBottomRight: [box.width + 40, 40], maxZoom };
}

// fitTo fits the map to bounds (or one point) beside the panel.
export function fitTo(map, bounds, maxZoom = FOCUS_ZOOM) {
  if (!bounds?.isValid?.()) return;
  map.fitBounds(bounds, fitOptions(maxZoom));
}
