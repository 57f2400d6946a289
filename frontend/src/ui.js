// Small DOM and formatting helpers shared by the views.

export const $ = (id) => document.getElementById(id);

// h builds an element: h('li', { class: 'x', dataset: { key } }, child, 'text').
// Props starting with "on" become listeners; others are set as properties
// when the element has one (value, checked, disabled…), else as attributes.
export function h(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (value == null || value === false) continue;
    if (name === 'class') node.className = value;
    else if (name === 'dataset') Object.assign(node.dataset, value);
    else if (name === 'text') node.textContent = value;
    else if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else if (name in node && typeof value !== 'string') node[name] = value;
    else node.setAttribute(name, value === true ? '' : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child == null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

// button makes a real <button type="button">.
export const button = (text, onclick, props = {}) =>
  h('button', { type: 'button', onclick, ...props }, text);

// batcher returns a function that schedules fn once for the next frame,
// however often it is called before then. A timer backs up the frame so
// updates still land in a background tab, where frames are paused.
export function batcher(fn) {
  let pending = false;
  let frame = 0;
  let timer = 0;
  const run = () => {
    if (!pending) return;
    pending = false;
    cancelAnimationFrame(frame);
    clearTimeout(timer);
    fn();
  };
  return () => {
    if (pending) return;
    pending = true;
    frame = requestAnimationFrame(run);
    timer = setTimeout(run, 250);
  };
}

// Messages. #message (role=alert) carries errors, with a retry button
// where trying again makes sense; #status (role=status) carries notices,
// optionally with one action such as "Undo".
let retryFn = null;
let statusFn = null;
let statusTimer = 0;

export function showError(text, retry) {
  retryFn = retry || null;
  $('message-text').textContent = text;
  $('retry').hidden = !retry;
  $('message').hidden = !text;
}

export function clearError() {
  showError('');
}

export function announce(text, action) {
  clearTimeout(statusTimer);
  statusFn = action?.fn || null;
  $('status-text').textContent = text;
  $('status-action').textContent = action?.label || '';
  $('status-action').hidden = !action;
  $('status').hidden = !text;
  if (text) statusTimer = setTimeout(() => announce(''), action ? 10000 : 5000);
}

export function initMessages() {
  $('retry').addEventListener('click', () => {
    const fn = retryFn;
    clearError();
    fn?.();
  });
  $('message-close').addEventListener('click', clearError);
  $('status-action').addEventListener('click', () => {
    const fn = statusFn;
    announce('');
    fn?.();
  });
}

// describeError turns an ApiError (or anything thrown) into a sentence
// that starts with what we were doing.
export function describeError(doing, err) {
  return `${doing}: ${err?.message || err}`;
}

// Time.
const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto', style: 'short' });
const UNITS = [
  ['year', 31536000], ['month', 2592000], ['week', 604800], ['day', 86400],
  ['hour', 3600], ['minute', 60], ['second', 1],
];

// ago says how far the Unix time tst is from now ("3 min. ago", "in 2 days").
export function ago(tst, now = Date.now() / 1000) {
  if (!Number.isFinite(tst)) return '';
  const secs = tst - now;
  if (Math.abs(secs) < 45) return rtf.format(0, 'second');
  const [unit, size] = UNITS.find(([, s]) => Math.abs(secs) >= s);
  return rtf.format(Math.trunc(secs / size), unit);
}

const dateTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const timeFormat = new Intl.DateTimeFormat(undefined, { timeStyle: 'medium' });

export const fmtDateTime = (tst) => (Number.isFinite(tst) ? dateTimeFormat.format(tst * 1000) : '');
export const fmtTime = (tst) => (Number.isFinite(tst) ? timeFormat.format(tst * 1000) : '');

// fmtDuration renders seconds as "2 h 5 min", "45 s".
export function fmtDuration(secs) {
  if (!Number.isFinite(secs) || secs < 0) return '';
  if (secs < 60) return `${Math.round(secs)} s`;
  const d = Math.floor(secs / 86400);
  const hrs = Math.floor((secs % 86400) / 3600);
  const min = Math.floor((secs % 3600) / 60);
  return [d && `${d} d`, hrs && `${hrs} h`, min && `${min} min`].filter(Boolean).join(' ') || '0 min';
}

// toUnix reads a time the API gives as Unix seconds or an RFC 3339 string.
export function toUnix(v) {
  if (typeof v === 'number') return v;
  const ms = Date.parse(v);
  return Number.isFinite(ms) ? ms / 1000 : NaN;
}

// Colours and badges.

// colorOf gives each device a stable colour so markers are told apart.
export function colorOf(key) {
  let hash = 0;
  for (const c of key) hash = (hash * 31 + c.codePointAt(0)) >>> 0;
  return `hsl(${hash % 360} 60% 38%)`;
}

const BASE64 = /^[A-Za-z0-9+/=\s]+$/;

// faceURL makes a data URL of a card's face (base64, PNG in the booklet;
// some apps send JPEG), or returns '' if there is none.
export function faceURL(face) {
  if (typeof face !== 'string' || !face || !BASE64.test(face)) return '';
  const type = face.startsWith('/9j/') ? 'jpeg' : 'png';
  return `data:image/${type};base64,${face.replace(/\s/g, '')}`;
}

// initials is what a badge shows without a face: the tracker ID, else the
// first letters of the device.
export function initials(info) {
  return String(info.tid || info.device || info.user || '?').slice(0, 2);
}

// avatar is the round badge used on the map and in the list.
export function avatar(info, key) {
  const span = h('span', { class: 'avatar', 'aria-hidden': 'true' });
  span.style.setProperty('--color', colorOf(key));
  const url = faceURL(info.face);
  if (url) span.append(h('img', { src: url, alt: '' }));
  else span.textContent = initials(info);
  return span;
}

// isNarrow is true on phone-sized screens, where the panel collapses.
export const isNarrow = () => window.matchMedia('(max-width: 700px)').matches;
