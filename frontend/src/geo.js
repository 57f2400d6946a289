// Distances and the time formats of the forms and the API.

const EARTH_RADIUS_M = 6371008.8; // mean radius (IUGG)

// haversine is the great-circle distance in metres between two points.
export function haversine(lat1, lon1, lat2, lon2) {
  const rad = Math.PI / 180;
  const dLat = (lat2 - lat1) * rad;
  const dLon = (lon2 - lon1) * rad;
  const a = Math.sin(dLat / 2) ** 2 + Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(a)));
}

// trackLength sums the distances between consecutive points, in metres.
export function trackLength(points) {
  let m = 0;
  for (let i = 1; i < points.length; i++) {
    const a = points[i - 1];
    const b = points[i];
    m += haversine(a.lat, a.lon, b.lat, b.lon);
  }
  return m;
}

const pad = (n) => String(n).padStart(2, '0');

// toLocalInput renders a Date as a datetime-local value (local time, with
// seconds, as the inputs have step=1).
export function toLocalInput(date) {
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

// fromLocalInput reads a datetime-local value as local time; null if empty
// or invalid. (A string without an offset is local time in ES2015+.)
export function fromLocalInput(value) {
  if (!value) return null;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? null : d;
}

// toApiTime renders a Date as the Recorder's UTC YYYY-MM-DDTHH:MM:SS.
export function toApiTime(date) {
  return date.toISOString().slice(0, 19);
}

// startOfDay returns local midnight of the day date is in, days later.
export function startOfDay(date, days = 0) {
  return new Date(date.getFullYear(), date.getMonth(), date.getDate() + days);
}
