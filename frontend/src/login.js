// Sign-in with a session cookie: GET /api/v1/session tells whether the
// browser is signed in, POST signs in, DELETE signs out. The session's
// csrf token goes with every state-changing call (api.js).
import { ApiError, del, get, post } from './api.js';
import { $ } from './ui.js';

const SESSION_URL = '/api/v1/session';

// currentSession returns the session, or null when not signed in (401).
// Other failures throw.
export async function currentSession() {
  try {
    return await get(SESSION_URL, { quiet401: true });
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return null;
    throw err;
  }
}

export async function signOut() {
  await del(SESSION_URL, { quiet401: true });
}

function setError(text) {
  const el = $('login-error');
  el.textContent = text;
  el.hidden = !text;
}

// showLogin shows the form (with a reason, if any) and focuses it.
export function showLogin(reason = '') {
  $('login-screen').hidden = false;
  $('login').hidden = false;
  setError(reason);
  $('login-password').value = '';
  const field = $('login-user').value ? $('login-password') : $('login-user');
  field.focus();
}

export function hideLogin() {
  setError('');
  $('login').hidden = true;
  $('login-screen').hidden = true;
}

// initLogin wires the form; onSignedIn gets the session JSON.
export function initLogin(onSignedIn) {
  const form = $('login');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const user = $('login-user').value.trim();
    const password = $('login-password').value;
    if (!user || !password) {
      setError('Enter your user name and password.');
      (user ? $('login-password') : $('login-user')).focus();
      return;
    }
    const submit = $('login-submit');
    submit.disabled = true;
    form.setAttribute('aria-busy', 'true');
    setError('');
    try {
      const session = await post(SESSION_URL, { user, password }, { quiet401: true });
      $('login-password').value = '';
      onSignedIn(session);
    } catch (err) {
      let text;
      if (err.status === 401) text = 'Wrong user name or password.';
      else if (err.status === 429) text = `Too many attempts. ${err.message || 'Wait a minute and try again.'}`;
      else text = `Cannot sign in: ${err.message}.`;
      setError(text);
      $('login-password').select();
      $('login-password').focus();
    } finally {
      submit.disabled = false;
      form.removeAttribute('aria-busy');
    }
  });
}
