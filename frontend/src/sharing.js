// The sharing view: who sees me (shares I grant) and whom I see (shares
// granted to me), from /api/v1/shares; grant and revoke.
import { del, get, post, query } from './api.js';
import { fromLocalInput } from './geo.js';
import { $, ago, announce, button, clearError, describeError, fmtDateTime, h, showError, toUnix } from './ui.js';

export function createSharing(hooks) {
  const out = $('shares-out');
  const inbox = $('shares-in');
  let shares = [];

  async function load() {
    try {
      const arr = await get('/api/v1/shares');
      shares = Array.isArray(arr) ? arr : [];
      clearError();
      render();
    } catch (err) {
      if (err.status !== 401) showError(describeError('Cannot load the shares', err), load);
    }
  }

  function describe(s, now) {
    const parts = [s.device ? `device ${s.device}` : 'all devices'];
    const until = toUnix(s.until);
    if (Number.isFinite(until)) {
      parts.push(until < now ? `expired ${ago(until, now)}` : `until ${fmtDateTime(until)} (${ago(until, now)})`);
    }
    if (s.precision > 0) parts.push(`to about ${s.precision} m`);
    else parts.push('exact');
    parts.push(s.history ? 'with history' : 'live only');
    return parts.join(' · ');
  }

  function item(s, outgoing, now) {
    const me = document.body.dataset.user;
    const who = outgoing ? (s.owner === me ? s.viewer : `${s.owner} \u2192 ${s.viewer}`) : s.owner;
    const until = toUnix(s.until);
    const expired = Number.isFinite(until) && until < now;
    const label = outgoing ? 'Stop sharing' : 'Remove';
    return h('li', { dataset: { shareId: String(s.id) }, class: expired ? 'expired' : null },
      h('div', { class: 'share' },
        h('span', { class: 'name' }, who),
        h('span', { class: 'sub' }, describe(s, now))),
      button(label, () => revoke(s, outgoing), { class: 'share-revoke', 'aria-label': `${label}: ${who}, ${s.device || 'all devices'}` }));
  }

  function render() {
    const me = document.body.dataset.user;
    const now = Date.now() / 1000;
    // Admins are listed every share; those between others count as outgoing.
    const incoming = shares.filter((s) => s.viewer === me && s.owner !== me);
    const outgoing = shares.filter((s) => !incoming.includes(s));
    out.replaceChildren(...outgoing.map((s) => item(s, true, now)));
    inbox.replaceChildren(...incoming.map((s) => item(s, false, now)));
    $('shares-out-empty').hidden = outgoing.length > 0;
    $('shares-in-empty').hidden = incoming.length > 0;
  }

  async function revoke(s, outgoing) {
    try {
      await del(`/api/v1/shares/${encodeURIComponent(s.id)}`);
    } catch (err) {
      if (err.status !== 404) {
        if (err.status !== 401) showError(describeError('Cannot revoke the share', err), () => revoke(s, outgoing));
        return;
      }
    }
    shares = shares.filter((x) => x.id !== s.id);
    render();
    const me = document.body.dataset.user;
    if (outgoing && s.owner === me) {
      announce(`${s.viewer} no longer sees ${s.device || 'your devices'}.`, { label: 'Undo', fn: () => grant(shareRequest(s)) });
    } else {
      announce(outgoing ? 'Share revoked.' : `You no longer see ${s.owner}.`);
    }
    $('share-viewer').focus();
  }

  const shareRequest = (s) => {
    const req = { viewer: s.viewer };
    if (s.device) req.device = s.device;
    if (s.until && toUnix(s.until) > Date.now() / 1000) req.until = s.until;
    if (s.precision > 0) req.precision = s.precision;
    if (s.history) req.history = true;
    return req;
  };

  async function grant(req) {
    const saved = await post('/api/v1/shares', req).catch((err) => {
      if (err.status !== 401) setFormError(describeError('Cannot share', err));
      return undefined;
    });
    if (saved === undefined) return false;
    if (saved?.id) shares = [...shares.filter((x) => x.id !== saved.id), saved];
    else await load();
    render();
    announce(`${req.viewer} now sees ${req.device || 'all your devices'}.`);
    return true;
  }

  function setFormError(text, field) {
    $('share-error').textContent = text;
    $('share-error').hidden = !text;
    field?.focus();
  }

  $('share-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const viewer = $('share-viewer').value.trim().toLowerCase();
    const device = $('share-device').value.trim();
    const precisionText = $('share-precision').value.trim();
    const untilText = $('share-until').value;
    if (!viewer) return setFormError('Whom do you share with? Enter their user name.', $('share-viewer'));
    if (viewer === document.body.dataset.user) return setFormError('You always see yourself; enter someone else.', $('share-viewer'));
    const req = { viewer };
    if (device) req.device = device;
    if (precisionText) {
      const p = Number(precisionText);
      if (!Number.isInteger(p) || p < 0) return setFormError('Precision: a whole number of metres (or empty for exact).', $('share-precision'));
      if (p > 0) req.precision = p;
    }
    if (untilText) {
      const until = fromLocalInput(untilText);
      if (!until) return setFormError('Until: enter a date and time.', $('share-until'));
      if (until <= new Date()) return setFormError('Until must be in the future.', $('share-until'));
      req.until = until.toISOString();
    }
    if ($('share-history').checked) req.history = true;
    setFormError('');
    const submit = $('share-add');
    submit.disabled = true;
    try {
      if (await grant(req)) $('share-form').reset();
    } finally {
      submit.disabled = false;
    }
  });

  // My devices, as suggestions for the device field.
  async function loadDevices() {
    const me = document.body.dataset.user;
    const names = new Set(hooks.devicesOf(me));
    try {
      const res = await get(query('/api/0/list', { user: me }));
      for (const d of res?.results || []) names.add(String(d));
    } catch {
      // Suggestions only.
    }
    $('share-device-list').replaceChildren(...[...names].sort().map((d) => h('option', { value: d })));
  }

  return {
    show() {
      load();
      loadDevices();
    },
    hide() {},
    stop() {
      shares = [];
      out.replaceChildren();
      inbox.replaceChildren();
      $('share-form').reset();
      setFormError('');
    },
  };
}
