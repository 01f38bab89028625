// keygate dashboard. It talks to the JSON API under /api with the session cookie, which
// is HttpOnly: this script never sees it. API keys are shown once and never stored.
'use strict';

(() => {
  const $ = (selector, root = document) => root.querySelector(selector);

  // ---- Talking to the API ------------------------------------------------------------

  /** An error answer: `{message, code, reason, issues}`, and a 429's `Retry-After`. */
  class ApiError extends Error {
    constructor(status, body, retryAfter = 0) {
      const b = body && typeof body === 'object' ? body : {};
      super(typeof b.message === 'string' && b.message
        ? b.message
        : `The server answered with status ${status}.`);
      this.status = status;
      this.reason = typeof b.reason === 'string' ? b.reason : '';
      this.issues = Array.isArray(b.issues) ? b.issues : [];
      this.retryAfter = retryAfter;
    }
  }

  /** Reasons that mean the session itself is gone: back to the sign-in form. */
  const SESSION_GONE = new Set(['missing_credentials', 'invalid_session', 'session_expired']);

  let signedIn = false;

  /** Sends a request; answers the parsed body and the response's headers. */
  async function exchange(method, path, body) {
    const init = { method, credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/json' } };
    if (method === 'POST') {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body || {});
    }
    let resp;
    try {
      resp = await fetch(path, init);
    } catch {
      throw new ApiError(0, { message: 'The server could not be reached. Is keygate running?' });
    }
    const text = await resp.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      // Not JSON; the status tells what happened.
    }
    if (!resp.ok) {
      const err = new ApiError(resp.status, data, Number(resp.headers.get('Retry-After')) || 0);
      if (resp.status === 401 && signedIn) {
        if (SESSION_GONE.has(err.reason)) sessionEnded();
        // Still signed in, but the organization wants two-factor first.
        else if (err.reason === 'two_factor_required') $('#tf-required').hidden = false;
      }
      throw err;
    }
    return { data, headers: resp.headers };
  }
  const call = async (method, path, body) => (await exchange(method, path, body)).data;
  const get = (path) => call('GET', path);
  /** A listing's page and its `X-Total-Count`. */
  async function getPage(path) {
    const { data, headers } = await exchange('GET', path);
    return { items: data, total: Number(headers.get('X-Total-Count')) || data.length };
  }
  /** `path` with `params` as its query string. */
  const withQuery = (path, params) => `${path}?${new URLSearchParams(params)}`;
  /** Keys shown on one page of the dashboard's list. */
  const KEY_VIEW = 20;
  const post = (path, body) => call('POST', path, body);

  // ---- Small helpers -----------------------------------------------------------------

  /** Builds an element; text children are text nodes, never HTML. */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === 'class') el.className = value;
      else el.setAttribute(name, value === true ? '' : String(value));
    }
    for (const child of children.flat()) {
      if (child !== null && child !== undefined) el.append(child);
    }
    return el;
  }

  const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
  const dayFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });
  const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

  /** A `<time>` for an RFC 3339 string (the date alone with `day`), or `none` when absent. */
  function when(iso, none = '—', day = false) {
    if (!iso) return none;
    const date = new Date(iso);
    return h('time', { datetime: iso, title: dateFormat.format(date) }, (day ? dayFormat : dateFormat).format(date));
  }

  /** "5 minutes ago", with the exact time as a tooltip. */
  function ago(iso, none = 'never') {
    if (!iso) return none;
    const secs = (Date.parse(iso) - Date.now()) / 1000;
    const units = [['year', 31536000], ['month', 2592000], ['day', 86400], ['hour', 3600], ['minute', 60]];
    let text = 'just now';
    for (const [unit, size] of units) {
      if (Math.abs(secs) >= size) {
        text = relative.format(Math.round(secs / size), unit);
        break;
      }
    }
    return h('time', { datetime: iso, title: dateFormat.format(new Date(iso)) }, text);
  }

  /** "40 seconds", "15 minutes" or "2 hours", rounded up. */
  function duration(secs) {
    const plural = (n, unit) => `${n} ${unit}${n === 1 ? '' : 's'}`;
    if (secs < 90) return plural(Math.max(1, Math.ceil(secs)), 'second');
    if (secs < 90 * 60) return plural(Math.ceil(secs / 60), 'minute');
    return plural(Math.ceil(secs / 3600), 'hour');
  }

  function windowName(ms) {
    return { 1000: 'second', 60000: 'minute', 3600000: 'hour', 86400000: 'day' }[ms] || `${ms / 1000} s`;
  }

  /** "Chrome on Linux" from a User-Agent. */
  function describeAgent(ua) {
    if (!ua) return 'Unknown';
    const browsers = [['Edg/', 'Edge'], ['OPR/', 'Opera'], ['Firefox/', 'Firefox'],
      ['HeadlessChrome/', 'Headless Chrome'], ['Chrome/', 'Chrome'], ['Safari/', 'Safari'],
      ['curl/', 'curl']];
    const systems = [['Windows', 'Windows'], ['Android', 'Android'], ['iPhone', 'iOS'],
      ['iPad', 'iPadOS'], ['Mac OS X', 'macOS'], ['Linux', 'Linux']];
    const browser = browsers.find(([needle]) => ua.includes(needle));
    const system = systems.find(([needle]) => ua.includes(needle));
    if (!browser) return ua;
    return system ? `${browser[1]} on ${system[1]}` : browser[1];
  }

  /**
   * Shows an error in a `<p class="error">`: its message, any field issue the message
   * does not already say, and marks the form's fields named by the issues as invalid.
   */
  function showError(el, err) {
    const message = err.message || String(err);
    const issues = err.issues || [];
    el.replaceChildren(message);
    const unsaid = issues.filter((i) => !message.includes(i.message));
    if (unsaid.length) {
      el.append(h('ul', null, unsaid.map((i) => h('li', null, i.path ? `${i.path}: ${i.message}` : i.message))));
    }
    el.hidden = false;
    const form = el.closest('form');
    if (!form) return;
    for (const issue of issues) {
      const field = issue.path && form.elements.namedItem(issue.path);
      if (field && field.setAttribute) field.setAttribute('aria-invalid', 'true');
    }
  }

  function clearError(el) {
    el.replaceChildren();
    el.hidden = true;
    const form = el.closest('form');
    if (!form) return;
    for (const field of form.querySelectorAll('[aria-invalid]')) field.removeAttribute('aria-invalid');
  }

  let toastTimer = 0;
  /** A short message at the bottom of the window. */
  function toast(text, kind = 'ok') {
    const box = $('#flash');
    box.replaceChildren(h('p', { class: kind, role: kind === 'error' ? 'alert' : null }, text));
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => box.replaceChildren(), kind === 'error' ? 10000 : 5000);
  }

  /** Runs `work` with `button` marked busy; a busy button ignores further clicks. */
  async function busy(button, work) {
    button.setAttribute('aria-disabled', 'true');
    try {
      return await work();
    } finally {
      button.removeAttribute('aria-disabled');
    }
  }
  const isBusy = (button) => button.getAttribute('aria-disabled') === 'true';

  /**
   * Focuses `el`, even when the browser already counts it as focused: after a modal
   * dialog closes, Chrome can hand focus back to a text field that then ignores typing
   * until it is focused again.
   */
  function refocus(el) {
    if (!el || !el.isConnected) return;
    el.blur();
    el.focus();
  }

  /** Moves focus to the element `selector` matches, if any. */
  function focus(selector) {
    refocus($(selector));
  }

  // ---- Dialogs -----------------------------------------------------------------------

  /** Asks for confirmation; resolves to `null` (cancelled) or `{grace}` (seconds). */
  function confirmDialog({ title, text, ok, grace = false }) {
    const dialog = $('#confirm-dialog');
    $('#confirm-title').textContent = title;
    $('#confirm-text').textContent = text;
    $('#confirm-ok').textContent = ok;
    $('#confirm-grace').hidden = !grace;
    $('#confirm-grace-select').value = '0';
    dialog.returnValue = '';
    const opener = document.activeElement;
    return new Promise((resolve) => {
      dialog.addEventListener('close', () => {
        refocus(opener);
        resolve(dialog.returnValue === 'ok' ? { grace: Number($('#confirm-grace-select').value) } : null);
      }, { once: true });
      dialog.showModal();
    });
  }

  /**
   * Handles the submissions of the form `selector`, one at a time: its error cleared,
   * then `run(form, button)`. A refusal is shown in the form, which keeps its input.
   */
  function onSubmit(selector, run) {
    $(selector).addEventListener('submit', async (event) => {
      event.preventDefault();
      const form = event.currentTarget;
      const button = $('button[type=submit]', form);
      const error = $('.error', form);
      if (isBusy(button)) return;
      clearError(error);
      try {
        await run(form, button);
      } catch (err) {
        showError(error, err);
      }
    });
  }

  /**
   * Asks for a few values in a dialog and hands them to `submit`, which talks to the
   * server. A refusal is shown in the dialog, which stays open with what was typed;
   * resolves to what `submit` answered, or `null` if cancelled. Each field is
   * `{name, label, value, required, maxlength, placeholder, hint, type}`; `name` is the
   * API's field, so the issues of a 400 mark it.
   */
  function editDialog({ title, text = '', fields, ok, submit }) {
    const dialog = $('#edit-dialog');
    const form = $('#edit-form');
    const error = $('.error', form);
    $('#edit-title').textContent = title;
    $('#edit-text').textContent = text;
    $('#edit-text').hidden = !text;
    $('#edit-ok').textContent = ok;
    clearError(error);
    $('#edit-fields').replaceChildren(...fields.map((f) => {
      const id = `edit-f-${f.name}`;
      const hintId = f.hint ? `${id}-hint` : null;
      return h('div', { class: 'field' },
        h('label', { for: id }, f.label, f.required ? null : h('span', { class: 'muted' }, ' (optional)')),
        h('input', {
          id, name: f.name, type: f.type || 'text', value: f.value || '', required: Boolean(f.required),
          maxlength: String(f.maxlength || 255), placeholder: f.placeholder || null, autocomplete: 'off',
          spellcheck: 'false', 'aria-describedby': hintId,
        }),
        f.hint ? h('p', { id: hintId, class: 'hint' }, f.hint) : null);
    }));
    const opener = document.activeElement;
    return new Promise((resolve) => {
      let result = null;
      const onSubmit = async (event) => {
        event.preventDefault();
        const button = $('#edit-ok');
        if (isBusy(button)) return;
        clearError(error);
        const values = {};
        for (const f of fields) values[f.name] = form.elements.namedItem(f.name).value.trim();
        try {
          result = await busy(button, () => submit(values));
          dialog.close();
        } catch (err) {
          showError(error, err);
          const bad = form.querySelector('[aria-invalid]');
          if (bad) bad.focus();
        }
      };
      const onCancel = () => dialog.close();
      form.addEventListener('submit', onSubmit);
      $('#edit-cancel').addEventListener('click', onCancel);
      dialog.addEventListener('close', () => {
        form.removeEventListener('submit', onSubmit);
        $('#edit-cancel').removeEventListener('click', onCancel);
        refocus(opener);
        resolve(result);
      }, { once: true });
      dialog.showModal();
      const first = $('input', form);
      if (first) {
        first.focus();
        first.select();
      }
    });
  }

  /** What the secret dialog says of an API key, as the page has it. */
  const KEY_NOTE = [...$('#secret-note').childNodes].map((n) => n.cloneNode(true));

  /**
   * Shows a secret once; it is dropped from the page when the dialog closes. `note` is
   * what to say of it (by default, of an API key), `what` names it in the copy hint.
   */
  function showSecret({ title, label, secret, note = null, what = 'key', done = 'I have stored it' }) {
    const dialog = $('#secret-dialog');
    const input = $('#secret-value');
    $('#secret-title').textContent = title;
    $('#secret-label').textContent = label;
    $('#secret-note').replaceChildren(...(note || KEY_NOTE.map((n) => n.cloneNode(true))));
    $('#secret-done').textContent = done;
    $('#secret-copied').textContent = '';
    dialog.dataset.what = what;
    input.value = secret;
    const opener = document.activeElement;
    return new Promise((resolve) => {
      dialog.addEventListener('close', () => {
        input.value = '';
        refocus(opener);
        resolve();
      }, { once: true });
      dialog.showModal();
      input.focus();
      input.select();
    });
  }

  /** Selects the text of `el`, a field or any element, for the user to copy. */
  function selectText(el) {
    if (el instanceof HTMLInputElement || el instanceof HTMLTextAreaElement) {
      el.focus();
      el.select();
      return;
    }
    el.focus();
    const range = document.createRange();
    range.selectNodeContents(el);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  /**
   * Copies `text` to the clipboard and says so in `status`. Where the clipboard cannot be
   * written (a plain-HTTP address other than localhost, a refusal), `el` is selected
   * instead for the user to copy; `what` names it.
   */
  async function copyText(text, el, status, what) {
    let copied = false;
    if (navigator.clipboard && window.isSecureContext) {
      try {
        await navigator.clipboard.writeText(text);
        copied = true;
      } catch {
        // Fall back below.
      }
    }
    if (!copied) {
      selectText(el);
      try {
        copied = document.execCommand('copy');
      } catch {
        copied = false;
      }
    }
    status.textContent = copied
      ? 'Copied to the clipboard.'
      : `Copying did not work here: the ${what} is selected, copy it with Ctrl+C (or ⌘C).`;
  }

  $('#secret-copy').addEventListener('click', () => {
    const input = $('#secret-value');
    copyText(input.value, input, $('#secret-copied'), $('#secret-dialog').dataset.what);
  });

  // ---- Signed out --------------------------------------------------------------------

  function showAuthForm(id) {
    for (const form of document.querySelectorAll('#auth form')) form.hidden = form.id !== id;
    focus(`#${id} h1`);
  }

  function showAuth() {
    signedIn = false;
    state.me = null;
    showTwoFactor('idle');
    $('#loading').hidden = true;
    $('#app').hidden = true;
    $('#who').hidden = true;
    $('#tf-required').hidden = true;
    // Nothing of the signed-in view stays in the page.
    for (const body of document.querySelectorAll('#app tbody, #projects-list')) body.replaceChildren();
    closeUsage(false);
    closeMember(false);
    domains.open.clear();
    domains.loaded.clear();
    activity.view = null;
    activity.cursor = null;
    activity.seq += 1;
    $('#activity-form').reset();
    clearError($('#activity-form .error'));
    $('#activity-status').textContent = '';
    $('#activity-more').hidden = true;
    $('#auth').hidden = false;
    $('#sign-in-notice').hidden = true;
    $('#sign-up-invited').hidden = true;
    showAuthForm('sign-in-form');
  }

  function sessionEnded() {
    showAuth();
    showError($('#sign-in-form .error'), { message: 'Your session has ended. Sign in again.' });
  }

  for (const button of document.querySelectorAll('#auth [data-show]')) {
    button.addEventListener('click', () => showAuthForm(button.dataset.show));
  }

  async function submitAuth(event, path, body) {
    event.preventDefault();
    const form = event.currentTarget;
    const button = $('button[type=submit]', form);
    const error = $('.error', form);
    if (isBusy(button)) return;
    clearError(error);
    $('#sign-in-notice').hidden = true;
    try {
      const answer = await busy(button, () => post(path, body()));
      for (const input of form.querySelectorAll('input[type=password]')) input.value = '';
      clearError(error);
      // Signing up with the invitation's token accepted it.
      if (form.id === 'sign-up-form' && $('#up-invitation').value.trim() === pendingInvite) pendingInvite = '';
      if (answer.twoFactorRedirect) showCodeStep();
      else await signedInWith(answer);
    } catch (err) {
      showError(error, err);
    }
  }

  /** Continues after a sign-in that made a session, by password or by the code step. */
  async function signedInWith(answer) {
    // Forward auth sent the browser here to sign in: back to the service it asked for,
    // when the server allowed the address (a registered domain or this server).
    if (answer.url) {
      window.location.assign(answer.url);
      return;
    }
    await enter(answer.user);
    await offerInvitation();
  }

  // The code step of a sign-in: the password step set a cookie for it that lives 3 minutes.

  /** The code step's two fields: the authenticator's code, or one of the backup codes. */
  const CODE_KINDS = {
    totp: {
      path: '/api/auth/two-factor/verify-totp',
      label: 'Code from your authenticator app',
      hint: 'The 6 digits the app shows now.',
      attrs: { autocomplete: 'one-time-code', inputmode: 'numeric', pattern: '[0-9]{3} ?[0-9]{3}', maxlength: '7' },
      other: 'Use a backup code instead',
    },
    backup: {
      path: '/api/auth/two-factor/verify-backup-code',
      label: 'Backup code',
      hint: 'One of the codes you stored when you set two-factor up (xxxxx-xxxxx). Each works once.',
      attrs: { autocomplete: 'off', inputmode: 'text', pattern: null, maxlength: '32' },
      other: 'Use a code from the app instead',
    },
  };
  let codeKind = 'totp';

  function setCodeKind(kind) {
    const k = CODE_KINDS[kind];
    const input = $('#tf-code');
    codeKind = kind;
    $('#tf-code-label').textContent = k.label;
    $('#tf-code-hint').textContent = k.hint;
    $('#tf-switch').textContent = k.other;
    for (const [name, value] of Object.entries(k.attrs)) {
      if (value === null) input.removeAttribute(name);
      else input.setAttribute(name, value);
    }
    input.value = '';
    clearError($('#two-factor-form .error'));
  }

  function showCodeStep() {
    setCodeKind('totp');
    $('#tf-trust').checked = false;
    showAuthForm('two-factor-form');
    focus('#tf-code');
  }

  /** A TOTP code as typed or pasted ("123 456"), or `null` when it is not 6 digits. */
  function totpCode(text) {
    const code = text.replace(/\s+/g, '');
    return /^[0-9]{6}$/.test(code) ? code : null;
  }

  /** What to say when a code was refused. */
  function codeRefused(err) {
    if (err.reason === 'invalid_two_factor_code') return { message: `Wrong code. ${err.message}.` };
    if (err.status === 429 && err.retryAfter) {
      return { message: `Too many attempts. Try again in ${duration(err.retryAfter)}.` };
    }
    return err;
  }

  $('#tf-switch').addEventListener('click', () => {
    setCodeKind(codeKind === 'totp' ? 'backup' : 'totp');
    focus('#tf-code');
  });

  $('#two-factor-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const button = $('button[type=submit]', form);
    const error = $('.error', form);
    const input = $('#tf-code');
    if (isBusy(button)) return;
    clearError(error);
    const code = codeKind === 'totp' ? totpCode(input.value) : input.value.trim();
    if (!code) {
      showError(error, { message: 'Enter the 6 digits your authenticator app shows.' });
      refocus(input);
      return;
    }
    try {
      const body = { code, trustDevice: $('#tf-trust').checked };
      const answer = await busy(button, () => post(CODE_KINDS[codeKind].path, body));
      input.value = '';
      await signedInWith(answer);
    } catch (err) {
      if (err.reason === 'two_factor_expired') {
        input.value = '';
        showAuthForm('sign-in-form');
        showError($('#sign-in-form .error'), { message: 'The sign-in timed out; sign in again.' });
        focus('#in-password');
        return;
      }
      showError(error, codeRefused(err));
      refocus(input);
      input.select();
    }
  });

  /** Where forward auth asked to return after sign-in (`?rd=`); the server checks it. */
  const returnTo = new URLSearchParams(window.location.search).get('rd');

  $('#sign-in-form').addEventListener('submit', (e) => submitAuth(e, '/api/auth/sign-in/email', () => {
    const body = {
      email: $('#in-email').value.trim(),
      password: $('#in-password').value,
    };
    if (returnTo) body.callbackURL = returnTo;
    return body;
  }));

  $('#sign-up-form').addEventListener('submit', (e) => submitAuth(e, '/api/auth/sign-up/email', () => {
    const body = {
      name: $('#up-name').value.trim(),
      email: $('#up-email').value.trim(),
      password: $('#up-password').value,
    };
    const token = $('#up-invitation').value.trim();
    if (token) body.invitationToken = token;
    return body;
  }));

  // An invitation link: the dashboard's address with `#invite=<token>`. Signed out, it
  // opens the sign-up form with the token filled in; signed in (or after signing in),
  // the page offers to accept it. The token stays in the fragment, never sent but to
  // the API.

  /** The token of the invitation link the page was opened with, or ''. */
  function inviteToken() {
    const m = /^#invite=(.+)$/.exec(window.location.hash);
    try {
      return m ? decodeURIComponent(m[1]) : '';
    } catch {
      return m[1];
    }
  }

  /** An invitation to accept once signed in. */
  let pendingInvite = '';

  function showInvitedSignUp(token) {
    pendingInvite = token;
    showAuth();
    showAuthForm('sign-up-form');
    $('#up-invitation').value = token;
    $('#sign-up-invited').hidden = false;
    focus('#up-name');
  }

  /** An invitation link opened in a page already loaded: accepted by the account signed
   * in, or signed up with. */
  function openInvitation(token) {
    window.history.replaceState(null, '', window.location.pathname + window.location.search);
    if (signedIn) {
      pendingInvite = token;
      showRoute(false);
      offerInvitation();
    } else {
      showInvitedSignUp(token);
    }
  }

  /** Offers to accept the pending invitation with the account signed in now. */
  async function offerInvitation() {
    const token = pendingInvite;
    pendingInvite = '';
    if (!token) return;
    const answer = await confirmDialog({
      title: 'Join an organization?',
      text: `You were invited to an organization. Accept the invitation as ${state.me ? state.me.email : 'you'}? It works only for the email it was sent to.`,
      ok: 'Accept invitation',
    });
    if (!answer) return;
    try {
      const member = await post('/api/organization.acceptInvitation', { token });
      await post('/api/organization.setActive', { organizationId: member.organizationId });
      await refresh();
      toast(`You joined ${state.active ? state.active.name : 'the organization'} as ${member.role}.`);
    } catch (err) {
      toast(err.message, 'error');
    }
  }

  // A password-reset link: the dashboard's address with `#reset=<token>`. The token stays
  // in the fragment, which the browser never sends; the page sends it only to set the
  // password.

  /** The token of the reset link the page was opened with, or ''. */
  function resetToken() {
    const m = /^#reset=(.+)$/.exec(window.location.hash);
    try {
      return m ? decodeURIComponent(m[1]) : '';
    } catch {
      return m[1];
    }
  }

  function dropResetToken() {
    window.history.replaceState(null, '', window.location.pathname + window.location.search);
  }

  function showReset() {
    showAuth();
    showAuthForm('reset-form');
    clearError($('#reset-form .error'));
    focus('#reset-password');
  }

  $('#reset-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const button = $('button[type=submit]', form);
    const error = $('.error', form);
    const first = $('#reset-password');
    const again = $('#reset-password-again');
    if (isBusy(button)) return;
    clearError(error);
    if (first.value !== again.value) {
      showError(error, { message: 'The two passwords differ.' });
      again.setAttribute('aria-invalid', 'true');
      refocus(again);
      again.select();
      return;
    }
    try {
      await busy(button, () => post('/api/auth/reset-password', { token: resetToken(), newPassword: first.value }));
      first.value = '';
      again.value = '';
      dropResetToken();
      showAuth();
      $('#sign-in-notice').textContent = 'Password set; sign in with it.';
      $('#sign-in-notice').hidden = false;
      focus('#in-email');
    } catch (err) {
      showError(error, err);
    }
  });

  $('#reset-cancel').addEventListener('click', () => {
    for (const input of document.querySelectorAll('#reset-form input')) input.value = '';
    dropResetToken();
    start();
  });

  // A reset link pasted into a tab that has the dashboard open already; or another
  // section, chosen in the navigation or by the browser's back button.
  window.addEventListener('hashchange', () => {
    const invited = inviteToken();
    if (resetToken()) showReset();
    else if (invited) openInvitation(invited);
    else if (signedIn) showRoute(true);
  });

  $('#sign-out').addEventListener('click', async (event) => {
    const button = event.currentTarget;
    if (isBusy(button)) return;
    try {
      await busy(button, () => post('/api/auth/sign-out'));
      showAuth();
      toast('You are signed out.');
    } catch (err) {
      toast(err.message, 'error');
    }
  });

  // ---- Sections ----------------------------------------------------------------------

  /** Each section's address (`#/keys`) and the heading that takes focus there. */
  const ROUTES = {
    keys: { heading: '#keys-title', name: 'API keys' },
    sessions: { heading: '#sessions-title', name: 'Sessions' },
    organization: { heading: '#organization-title', name: 'Organization' },
    projects: { heading: '#projects-title', name: 'Projects' },
    activity: { heading: '#activity-title', name: 'Activity' },
    account: { heading: '#account-title', name: 'Account' },
  };

  /** The section the address names; the keys when it names none, as the reference's
   * "Settings → API Keys" leads there first. */
  function route() {
    const m = /^#\/([a-z]+)$/.exec(window.location.hash);
    return m && Object.hasOwn(ROUTES, m[1]) ? m[1] : 'keys';
  }

  /** Shows the section the address names alone; `moveFocus` puts focus on its heading. */
  function showRoute(moveFocus) {
    const current = route();
    for (const el of document.querySelectorAll('#app [data-route]')) {
      el.classList.toggle('off-route', el.dataset.route !== current);
    }
    for (const link of document.querySelectorAll('[data-nav]')) {
      if (link.dataset.nav === current) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
    document.title = `${ROUTES[current].name} · keygate`;
    if (moveFocus) focus(ROUTES[current].heading);
  }

  /** Opens section `name` and leaves focus where the caller puts it (pushState fires no
   * hashchange); back returns to the section before. */
  function goTo(name) {
    if (route() !== name) window.history.pushState(null, '', `#/${name}`);
    showRoute(false);
  }

  // ---- Signed in ---------------------------------------------------------------------

  /** What the page knows: the user, its organizations, the active one, its keys. */
  const state = {
    me: null, orgs: [], active: null, keys: [], members: [], projects: [],
    // The caller's flags in the active organization (`user.getPermissions`).
    perms: null,
  };

  async function enter(user) {
    signedIn = true;
    state.me = user;
    showTwoFactor('idle');
    $('#who-email').textContent = user.email;
    $('#me-name').textContent = user.name;
    $('#me-email').textContent = user.email;
    $('#loading').hidden = true;
    $('#auth').hidden = true;
    $('#who').hidden = false;
    $('#app').hidden = false;
    showRoute(true);
    await refresh();
  }

  /** Loads everything; each section shows its own failure. */
  async function refresh() {
    // Shown again by any answer that is still `two_factor_required`.
    $('#tf-required').hidden = true;
    const [me, orgs, active, sessions, projects, perms] = await Promise.allSettled([
      loadKeys(),
      get('/api/organization.all'),
      get('/api/organization.active'),
      get('/api/user.listSessions'),
      get('/api/project.all'),
      get('/api/user.getPermissions'),
    ]);
    if (!signedIn) return;
    state.orgs = orgs.status === 'fulfilled' ? orgs.value : [];
    state.active = active.status === 'fulfilled' ? active.value : null;
    state.perms = perms.status === 'fulfilled' ? perms.value : null;
    renderAccount(me, orgs, active);
    clearError($('#create-key-form .error'));
    renderKeys(me);
    renderSessions(sessions);
    renderProjects(projects);
    await Promise.all([reloadMembers(), reloadActivity()]);
  }

  /** Which page of keys is shown: 0 is the newest `KEY_VIEW` of them. */
  let keyPage = 0;

  /** `user.get`, with the caller's keys of page `keyPage`. The API lists keys oldest
   * first and `user.get` holds the first 100 of them, so a page past those is read with
   * `user.listApiKeys`. */
  async function loadKeys() {
    const me = await get('/api/user.get');
    if (me.unusedKeyDays) unusedDays = me.unusedKeyDays;
    const first = me.apiKeys || [];
    const total = me.apiKeysTotal ?? first.length;
    keyPage = Math.min(keyPage, Math.max(Math.ceil(total / KEY_VIEW) - 1, 0));
    const end = total - keyPage * KEY_VIEW;
    const offset = Math.max(end - KEY_VIEW, 0);
    const keys = end <= first.length
      ? first.slice(offset, end)
      : await get(withQuery('/api/user.listApiKeys', { offset, limit: end - offset }));
    return { me, keys, total, offset, end };
  }

  async function reloadKeys() {
    try {
      renderKeys({ status: 'fulfilled', value: await loadKeys() });
    } catch (err) {
      renderKeys({ status: 'rejected', reason: err });
    }
  }

  async function reloadSessions() {
    try {
      renderSessions({ status: 'fulfilled', value: await get('/api/user.listSessions') });
    } catch (err) {
      renderSessions({ status: 'rejected', reason: err });
    }
  }

  // Account and organizations

  function renderAccount(me, orgs, active) {
    if (me.status === 'fulfilled') {
      state.me = me.value.me.user;
      $('#me-name').textContent = state.me.name;
      $('#me-email').textContent = state.me.email;
      renderTwoFactorStatus();
    }
    $('#me-role').textContent = state.active ? state.active.role : '—';
    const activeName = state.active ? state.active.name : 'no organization';
    $('#projects-org-name').textContent = activeName;
    renderKeyOrgs();

    const select = $('#org-select');
    const options = state.orgs.map((o) => h('option', { value: o.id }, `${o.name} (${o.role})`));
    if (!state.active) options.unshift(h('option', { value: '', disabled: true }, 'Choose an organization'));
    select.replaceChildren(...options);
    select.value = state.active ? state.active.id : '';

    const error = $('#org-form .error');
    if (orgs.status === 'rejected') showError(error, orgs.reason);
    // The banner above says why there is no active organization.
    else if (active.status === 'rejected' && active.reason.reason !== 'two_factor_required') showError(error, active.reason);
    else clearError(error);

    const owner = Boolean(state.active && state.active.role === 'owner');
    $('#org-2fa-form').hidden = !owner;
    $('#org-require-2fa').checked = owner && state.active.requireTwoFactor;
    clearError($('#org-2fa-form .error'));
  }

  // An owner may require two-factor of the organization's members.

  $('#org-2fa-form').addEventListener('submit', (event) => event.preventDefault());

  $('#org-require-2fa').addEventListener('click', (event) => {
    if (isBusy(event.currentTarget)) event.preventDefault();
  });

  $('#org-require-2fa').addEventListener('change', async (event) => {
    const box = event.currentTarget;
    const error = $('#org-2fa-form .error');
    const org = state.active;
    if (!org) return;
    const wanted = box.checked;
    clearError(error);
    try {
      const updated = await busy(box, () => post('/api/organization.update', {
        organizationId: org.id, requireTwoFactor: wanted,
      }));
      state.active = { ...org, requireTwoFactor: updated.requireTwoFactor };
      box.checked = updated.requireTwoFactor;
      toast(updated.requireTwoFactor
        ? `${updated.name} now requires two-factor sign-in of its members.`
        : `${updated.name} no longer requires two-factor sign-in.`);
    } catch (err) {
      box.checked = !wanted;
      showError(error, err);
      if (err.reason === 'two_factor_needed_first') {
        error.append(' ', h('button', { type: 'button', class: 'link', 'data-tf-start': true }, 'Set up two-factor'));
      }
    }
  });

  $('#org-2fa-form').addEventListener('click', (event) => {
    if (event.target.closest('[data-tf-start]')) startTwoFactorSetup();
  });

  $('#org-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const button = $('button[type=submit]', form);
    const error = $('.error', form);
    const id = $('#org-select').value;
    if (isBusy(button) || !id) return;
    clearError(error);
    try {
      const org = await busy(button, () => post('/api/organization.setActive', { organizationId: id }));
      await refresh();
      toast(`Now working in ${org.name}.`);
    } catch (err) {
      showError(error, err);
    }
  });

  // Two-factor: on or off, setting it up, new backup codes, turning it off. Every change
  // asks for the password again, in a small form of its own.

  /** What the password form is asked for. */
  const PASSWORD_FOR = {
    enable: { label: 'Your password, to set up two-factor', ok: 'Continue' },
    regenerate: { label: 'Your password, to make new backup codes', ok: 'Make new codes' },
    disable: { label: 'Your password, to turn two-factor off', ok: 'Turn off' },
  };
  let passwordFor = 'enable';

  function renderTwoFactorStatus() {
    const on = Boolean(state.me && state.me.twoFactorEnabled);
    $('#tf-status').replaceChildren(
      h('span', { class: on ? 'badge ok' : 'badge off' }, on ? 'On' : 'Off'), ' ',
      on ? 'Sign-in asks for a code from your authenticator app after the password.'
        : 'Sign-in asks for your password only.');
    $('#tf-setup').hidden = on;
    $('#tf-regenerate').hidden = !on;
    $('#tf-disable').hidden = !on;
  }

  /**
   * Shows one step of the two-factor panel: `idle` (the status and its buttons),
   * `password`, `enroll` (QR code, backup codes, first code) or `codes` (new backup
   * codes). Secrets of an earlier step leave the page.
   */
  function showTwoFactor(view) {
    $('#tf-actions').hidden = view !== 'idle';
    $('#tf-password-form').hidden = view !== 'password';
    $('#tf-enroll').hidden = view !== 'enroll';
    $('#tf-verify-form').hidden = view !== 'enroll';
    $('#tf-codes').hidden = view !== 'enroll' && view !== 'codes';
    $('#tf-codes-done').hidden = view !== 'codes';
    $('#tf-codes-title').textContent = view === 'enroll' ? '2. Store your backup codes' : 'Your new backup codes';
    $('#tf-password').value = '';
    if (view !== 'enroll') {
      $('#tf-qr').replaceChildren();
      $('#tf-secret').textContent = '';
      $('#tf-uri').textContent = '';
      $('#tf-first-code').value = '';
    }
    if (view !== 'enroll' && view !== 'codes') $('#tf-codes-list').textContent = '';
    $('#tf-codes-copied').textContent = '';
    for (const error of document.querySelectorAll('.two-factor .error')) clearError(error);
    renderTwoFactorStatus();
  }

  /** Opens the password form for `purpose`. */
  function askPassword(purpose) {
    passwordFor = purpose;
    showTwoFactor('password');
    $('#tf-password-label').textContent = PASSWORD_FOR[purpose].label;
    $('#tf-password-ok').textContent = PASSWORD_FOR[purpose].ok;
    $('#tf-password-ok').className = purpose === 'disable' ? 'button danger' : 'button primary';
    focus('#tf-password');
  }

  /** Takes the user to setting two-factor up: its password form, or the step it is at. */
  function startTwoFactorSetup() {
    goTo('account');
    if (!$('#tf-verify-form').hidden) {
      focus('#tf-first-code');
      return;
    }
    askPassword('enable');
  }

  $('#tf-required-setup').addEventListener('click', startTwoFactorSetup);

  /** Back to the status, focus on its first button. */
  function closeTwoFactor() {
    showTwoFactor('idle');
    focus('#tf-actions button:not([hidden])');
  }

  // The QR code is an SVG document the server drew. It is parsed as SVG, never as HTML,
  // and only the shapes a QR code is made of are kept before it joins the page.
  const SVG_ELEMENTS = new Set(['svg', 'g', 'rect', 'path']);
  const SVG_ATTRIBUTES = new Set(['xmlns', 'version', 'width', 'height', 'viewBox', 'shape-rendering',
    'x', 'y', 'd', 'fill', 'stroke', 'stroke-width', 'transform']);

  /** The `<svg>` element of `text`, or `null` when it is not an SVG document. */
  function svgImage(text) {
    const doc = new DOMParser().parseFromString(text, 'image/svg+xml');
    const root = doc.documentElement;
    if (root.localName !== 'svg' || doc.getElementsByTagName('parsererror').length) return null;
    const keep = (el) => {
      for (const child of [...el.children]) {
        if (child.namespaceURI === root.namespaceURI && SVG_ELEMENTS.has(child.localName)) keep(child);
        else child.remove();
      }
      for (const attr of [...el.attributes]) {
        if (!SVG_ATTRIBUTES.has(attr.name)) el.removeAttribute(attr.name);
      }
    };
    keep(root);
    const svg = document.importNode(root, true);
    svg.setAttribute('aria-hidden', 'true');
    svg.setAttribute('focusable', 'false');
    return svg;
  }

  /** The secret of an `otpauth://` URI, in groups of four for typing. */
  function totpSecret(uri) {
    let secret = '';
    try {
      secret = new URL(uri).searchParams.get('secret') || '';
    } catch {
      // Shown whole below instead.
    }
    return secret.match(/.{1,4}/g)?.join(' ') || '';
  }

  function showBackupCodes(codes) {
    $('#tf-codes-list').textContent = codes.join('\n');
  }

  for (const [id, purpose] of [['#tf-setup', 'enable'], ['#tf-regenerate', 'regenerate'], ['#tf-disable', 'disable']]) {
    $(id).addEventListener('click', () => askPassword(purpose));
  }
  for (const button of document.querySelectorAll('[data-tf-cancel]')) {
    button.addEventListener('click', closeTwoFactor);
  }

  $('#tf-password-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const button = $('button[type=submit]', form);
    const error = $('.error', form);
    const input = $('#tf-password');
    if (isBusy(button)) return;
    clearError(error);
    const body = { password: input.value };
    try {
      if (passwordFor === 'enable') {
        const setup = await busy(button, () => post('/api/auth/two-factor/enable', body));
        showTwoFactor('enroll');
        const qr = svgImage(setup.qrCodeSVG);
        $('#tf-qr').replaceChildren(qr || h('p', { class: 'error' }, 'The QR code cannot be shown here: enter the key by hand.'));
        $('#tf-secret').textContent = totpSecret(setup.totpURI) || setup.totpURI;
        $('#tf-uri').textContent = setup.totpURI;
        showBackupCodes(setup.backupCodes);
        $('#tf-enroll').scrollIntoView({ block: 'start' });
        $('#tf-first-code').focus({ preventScroll: true });
      } else if (passwordFor === 'regenerate') {
        const answer = await busy(button, () => post('/api/auth/two-factor/generate-backup-codes', body));
        showTwoFactor('codes');
        showBackupCodes(answer.backupCodes);
        focus('#tf-codes-copy');
        toast('New backup codes made; the old ones no longer work.');
      } else {
        await busy(button, () => post('/api/auth/two-factor/disable', body));
        state.me = { ...state.me, twoFactorEnabled: false };
        closeTwoFactor();
        toast('Two-factor is off: sign-in asks for your password only.');
        await refresh();
      }
    } catch (err) {
      if (err.reason === 'invalid_credentials') showError(error, { message: 'Wrong password.' });
      else showError(error, err);
      // Two-factor was turned on or off elsewhere: show how it is now.
      if (err.reason === 'two_factor_enabled' || err.reason === 'two_factor_not_enabled') refresh();
      refocus(input);
      input.select();
    }
  });

  $('#tf-codes-copy').addEventListener('click', () => {
    const list = $('#tf-codes-list');
    copyText(list.textContent, list, $('#tf-codes-copied'), 'list of codes');
  });

  $('#tf-codes-done').addEventListener('click', closeTwoFactor);

  $('#tf-verify-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const button = $('button[type=submit]', form);
    const error = $('.error', form);
    const input = $('#tf-first-code');
    if (isBusy(button)) return;
    clearError(error);
    const code = totpCode(input.value);
    if (!code) {
      showError(error, { message: 'Enter the 6 digits the app shows.' });
      refocus(input);
      return;
    }
    try {
      const answer = await busy(button, () => post('/api/auth/two-factor/verify-totp', { code }));
      state.me = answer.user;
      closeTwoFactor();
      toast('Two-factor is on: sign-in now asks for a code after the password.');
      await refresh();
    } catch (err) {
      showError(error, codeRefused(err));
      refocus(input);
      input.select();
    }
  });

  // API keys

  function keyStatus(k) {
    if (k.expiresAt && Date.parse(k.expiresAt) <= Date.now()) return h('span', { class: 'badge off' }, 'Expired');
    return k.enabled ? h('span', { class: 'badge ok' }, 'Enabled') : h('span', { class: 'badge off' }, 'Disabled');
  }

  /** Days without a request after which the server marks a key `unused`, as `user.get`
   * says (`--unused-key-days`). */
  let unusedDays = 30;

  /** The server's `unused` flag, in words: a key nothing has used for `unusedDays` days or
   * more. */
  function unusedBadge(k) {
    if (!k.unused) return null;
    return [' ', h('span', {
      class: 'badge warn',
      title: `No request for ${unusedDays} days or more (since its creation, if never used): delete it unless something still needs it.`,
    }, `Unused ${unusedDays}+ days`)];
  }

  function keyDetails(k) {
    const parts = [];
    if (k.rateLimitEnabled && k.rateLimitMax) {
      parts.push(`${k.rateLimitMax.toLocaleString()} per ${windowName(k.rateLimitTimeWindow)}`);
    }
    if (k.remaining !== undefined) parts.push(`${k.remaining.toLocaleString()} requests left`);
    if (k.scope && k.scope.readOnly) parts.push('read-only');
    if (k.scope && k.scope.projectIds) parts.push(`${k.scope.projectIds.length} project(s) only`);
    if (k.previousSecretExpiresAt && Date.parse(k.previousSecretExpiresAt) > Date.now()) {
      parts.push(`old secret until ${dateFormat.format(new Date(k.previousSecretExpiresAt))}`);
    }
    return parts.length ? h('span', { class: 'sub' }, parts.join(' · ')) : null;
  }

  function orgName(id) {
    const org = state.orgs.find((o) => o.id === id);
    return org ? org.name : id;
  }

  function renderKeys(loaded) {
    const error = $('#keys-error');
    const tbody = $('#keys-table tbody');
    if (loaded.status === 'rejected') {
      showError(error, loaded.reason);
      return;
    }
    clearError(error);
    const { keys, total } = loaded.value;
    state.keys = [...keys].reverse();
    tbody.replaceChildren(...state.keys.map((k) => h('tr', { class: k.enabled ? null : 'disabled' },
      h('td', { class: 'name' }, k.name, keyDetails(k)),
      h('td', { class: 'nowrap' }, h('code', null, `${k.start}…`)),
      h('td', null, orgName(k.organizationId)),
      h('td', { class: 'nowrap' }, when(k.createdAt, '—', true)),
      h('td', { class: 'nowrap' }, when(k.expiresAt, 'never', true)),
      h('td', { class: 'nowrap' }, ago(k.lastUsedAt), k.lastAddress ? h('span', { class: 'sub' }, k.lastAddress) : null),
      h('td', { class: 'num' }, k.requestCount.toLocaleString()),
      h('td', { class: 'status-cell' }, keyStatus(k), unusedBadge(k)),
      h('td', { class: 'actions' },
        h('button', { type: 'button', class: 'button secondary small', 'data-action': 'usage', 'data-id': k.id,
          'aria-controls': 'usage', 'aria-expanded': String(usage.key === k.id),
          'aria-label': `Usage of key ${k.name}` }, 'Usage'),
        h('button', { type: 'button', class: 'button secondary small', 'data-action': 'toggle', 'data-id': k.id,
          'aria-label': `${k.enabled ? 'Disable' : 'Enable'} key ${k.name}` }, k.enabled ? 'Disable' : 'Enable'),
        h('button', { type: 'button', class: 'button secondary small', 'data-action': 'rotate', 'data-id': k.id,
          'aria-label': `Rotate key ${k.name}` }, 'Rotate'),
        h('button', { type: 'button', class: 'button secondary small danger-text', 'data-action': 'delete', 'data-id': k.id,
          'aria-label': `Delete key ${k.name}` }, 'Delete')))));
    $('#keys-table').hidden = state.keys.length === 0;
    $('#keys-empty').hidden = state.keys.length !== 0;
    const { offset, end } = loaded.value;
    $('#keys-pager').hidden = total <= KEY_VIEW;
    $('#keys-more').textContent = `Keys ${(total - end + 1).toLocaleString()}–${(total - offset).toLocaleString()} of ${total.toLocaleString()}, newest first.`;
    $('#keys-newer').disabled = keyPage === 0;
    $('#keys-older').disabled = offset === 0;
    // The key whose usage is open was deleted, here or elsewhere.
    if (usage.key && !state.keys.some((k) => k.id === usage.key)) closeUsage(false);
  }

  /** The new key's organization: each of the caller's, with its role there; the active
   * one first chosen. */
  function renderKeyOrgs() {
    const select = $('#key-org');
    const chosen = select.value;
    select.replaceChildren(...state.orgs.map((o) => h('option', { value: o.id }, `${o.name} (your role: ${o.role})`)));
    const keep = state.orgs.some((o) => o.id === chosen) ? chosen : state.active && state.active.id;
    if (keep) select.value = keep;
    renderKeyProjects();
  }

  /** The projects a new key may be limited to: those of the active organization that the
   * caller sees (the page lists no other organization's projects). */
  function renderKeyProjects() {
    const box = $('#key-projects');
    const hint = $('#key-projects-hint');
    const inActive = Boolean(state.active && $('#key-org').value === state.active.id);
    const ticked = new Set([...box.querySelectorAll('input:checked')].map((i) => i.value));
    const projects = inActive ? state.projects : [];
    box.replaceChildren(...projects.map((p, n) => h('div', { class: 'check' },
      h('input', { id: `key-project-${n}`, type: 'checkbox', value: p.projectId, checked: ticked.has(p.projectId) }),
      h('label', { for: `key-project-${n}` }, p.name))));
    // A member needs canAccessToAPI for keys; the page knows it for the active
    // organization (the server decides for the others).
    const refused = inActive && state.perms && !state.perms.canAccessToAPI;
    $('#key-org-hint').textContent = refused
      ? 'Your role here does not let you create keys: an owner or admin can give you that permission under Organization.'
      : 'The key acts there with your role in it.';
    $('#create-key-form button[type=submit]').disabled = state.orgs.length === 0 || Boolean(refused);
    hint.hidden = inActive && projects.length > 0;
    hint.textContent = inActive
      ? 'This organization has no project you may see yet.'
      : 'To limit the key to some projects, switch to its organization under Account first.';
  }

  $('#key-org').addEventListener('change', renderKeyProjects);

  $('#create-key-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const button = $('button[type=submit]', form);
    const error = $('.error', form);
    if (isBusy(button)) return;
    clearError(error);
    const organizationId = $('#key-org').value;
    if (!organizationId) {
      showError(error, { message: 'Choose the organization the key acts in.' });
      return;
    }
    const body = { name: $('#key-name').value.trim(), metadata: { organizationId } };
    const scope = {};
    if ($('#key-read-only').checked) scope.readOnly = true;
    const projectIds = [...$('#key-projects').querySelectorAll('input:checked')].map((i) => i.value);
    if (projectIds.length) scope.projectIds = projectIds;
    if (Object.keys(scope).length) body.scope = scope;
    const days = $('#key-expiry').value.trim();
    if (days) body.expiresIn = Number(days) * 86400;
    const max = $('#key-rate-max').value.trim();
    if (max) {
      body.rateLimitMax = Number(max);
      body.rateLimitTimeWindow = Number($('#key-rate-window').value);
    }
    try {
      const created = await busy(button, () => post('/api/user.createApiKey', body));
      form.reset();
      $('#key-org').value = organizationId;
      renderKeyProjects();
      await reloadKeys();
      await showSecret({ title: 'Your new API key', label: `Key for ${created.name}`, secret: created.key });
    } catch (err) {
      showError(error, err);
    }
  });

  for (const [id, step] of [['#keys-newer', -1], ['#keys-older', 1]]) {
    $(id).addEventListener('click', async (event) => {
      const button = event.currentTarget;
      if (isBusy(button)) return;
      keyPage = Math.max(keyPage + step, 0);
      await busy(button, reloadKeys);
      if (button.disabled) focus('#keys-title');
    });
  }

  $('#keys-table tbody').addEventListener('click', async (event) => {
    const button = event.target.closest('button[data-action]');
    if (!button || isBusy(button)) return;
    const key = state.keys.find((k) => k.id === button.dataset.id);
    if (!key) return;
    const again = `#keys-table button[data-id="${key.id}"][data-action="${button.dataset.action}"]`;
    try {
      if (button.dataset.action === 'usage') {
        if (usage.key === key.id) closeUsage(true);
        else await openUsage(key);
      } else if (button.dataset.action === 'toggle') {
        const updated = await busy(button, () => post('/api/user.updateApiKey', { apiKeyId: key.id, enabled: !key.enabled }));
        await reloadKeys();
        toast(`Key “${key.name}” ${updated.enabled ? 'enabled' : 'disabled'}.`);
        focus(again);
      } else if (button.dataset.action === 'rotate') {
        const answer = await confirmDialog({
          title: `Rotate key “${key.name}”?`,
          text: 'The key gets a new secret, shown once. Clients must switch to it.',
          ok: 'Rotate',
          grace: true,
        });
        if (!answer) return;
        const rotated = await busy(button, () => post('/api/user.rotateApiKey', { apiKeyId: key.id, gracePeriodSeconds: answer.grace }));
        await reloadKeys();
        await showSecret({ title: 'The rotated API key', label: `Key for ${rotated.name}`, secret: rotated.key });
        focus(again);
      } else if (button.dataset.action === 'delete') {
        const answer = await confirmDialog({
          title: `Delete key “${key.name}”?`,
          text: 'Requests with this key are refused at once. This cannot be undone.',
          ok: 'Delete key',
        });
        if (!answer) return;
        await busy(button, () => post('/api/user.deleteApiKey', { apiKeyId: key.id }));
        await reloadKeys();
        toast(`Key “${key.name}” deleted.`);
        focus('#keys-title');
      }
    } catch (err) {
      toast(err.message, 'error');
    }
  });

  // Usage of a key: its requests per hour or per UTC day, stacked by outcome, drawn as SVG
  // from `user.apiKeyUsage`. Shapes take their colours from classes in dashboard.css: the
  // page's policy refuses inline styles.

  const HOUR = 3600 * 1000;
  const DAY = 24 * HOUR;
  const SVG_NS = 'http://www.w3.org/2000/svg';
  /** The outcomes of `user.apiKeyUsage`, bottom to top in a bar. */
  const OUTCOMES = [
    { field: 'ok', label: 'ok', cls: 's-ok' },
    { field: 'rateLimited', label: 'rate limited', cls: 's-rate' },
    { field: 'usageExceeded', label: 'usage exceeded', cls: 's-usage' },
    { field: 'refused', label: 'refused', cls: 's-refused' },
  ];
  const utcDay = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', timeZone: 'UTC' });
  const utcHour = new Intl.DateTimeFormat(undefined, {
    month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', timeZone: 'UTC',
  });

  /** The key whose usage is open, its last answer, and the count of requests made. */
  const usage = { key: null, data: null, seq: 0 };

  /** Builds an SVG element; text children are text nodes. */
  function svgNode(tag, attrs, ...children) {
    const el = document.createElementNS(SVG_NS, tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value !== null && value !== undefined) el.setAttribute(name, String(value));
    }
    for (const child of children.flat()) {
      if (child !== null && child !== undefined) el.append(child);
    }
    return el;
  }

  /** The span the selectors ask for: the first bucket's start, the bucket size, how many. */
  function usageSpan() {
    const days = Number($('#usage-span').value);
    const size = $('#usage-step').value === 'hour' ? HOUR : DAY;
    const count = size === HOUR ? days * 24 : days;
    const first = Math.floor(Date.now() / size) * size - (count - 1) * size;
    return { days, size, count, first };
  }

  /** The answer's hours summed into the span's buckets (hours or UTC days). */
  function buckets(data, span) {
    const out = Array.from({ length: span.count }, (_, i) => ({
      start: span.first + i * span.size, ok: 0, rateLimited: 0, usageExceeded: 0, refused: 0, total: 0,
    }));
    for (const hour of data.hours) {
      const b = out[Math.floor((Date.parse(hour.hour) - span.first) / span.size)];
      if (!b) continue;
      for (const o of OUTCOMES) b[o.field] += hour[o.field];
      b.total += OUTCOMES.reduce((n, o) => n + hour[o.field], 0);
    }
    return out;
  }

  /** A round step for about `parts` gridlines up to `max`: 1, 2 or 5 times a power of ten. */
  function niceStep(max, parts) {
    const raw = Math.max(max / parts, 1);
    const power = 10 ** Math.floor(Math.log10(raw));
    return [1, 2, 5, 10].map((m) => m * power).find((step) => step >= raw);
  }

  const bucketName = (b, span) => (span.size === DAY ? utcDay : utcHour).format(new Date(b.start));
  const countsText = (c) => OUTCOMES.map((o) => `${c[o.field].toLocaleString()} ${o.label}`).join(', ');

  /** The chart of `list` (the span's buckets) as an `<svg>` `width` pixels wide. */
  function usageChart(list, span, totals, keyName, width) {
    const height = 220;
    const m = { left: 48, right: 10, top: 12, bottom: 44 };
    const plotW = width - m.left - m.right;
    const plotH = height - m.top - m.bottom;
    const max = Math.max(0, ...list.map((b) => b.total));
    const step = niceStep(max, 4);
    const top = Math.max(step, Math.ceil(max / step) * step);
    const y = (v) => m.top + plotH - (v / top) * plotH;
    const slot = plotW / list.length;
    const barW = slot > 4 ? slot * 0.75 : slot;
    const unit = span.size === DAY ? 'day' : 'hour';
    const all = OUTCOMES.reduce((n, o) => n + totals[o.field], 0);
    const busiest = list.reduce((a, b) => (b.total > a.total ? b : a), list[0]);

    const summary = `Requests of key ${keyName} per ${unit} (UTC), the last ${span.days} days: `
      + `${all.toLocaleString()} in all (${countsText(totals)})`
      + (busiest.total ? `; the busiest ${unit}, ${bucketName(busiest, span)}, had ${busiest.total.toLocaleString()}.` : '.');
    const svg = svgNode('svg', {
      class: 'chart-svg', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img',
      'aria-labelledby': 'usage-svg-title',
    }, svgNode('title', { id: 'usage-svg-title' }, summary));

    // The value axis: gridlines with their counts, and its name.
    for (let v = 0; v <= top; v += step) {
      svg.append(
        svgNode('line', { class: v ? 'grid' : 'axis-line', x1: m.left, x2: width - m.right, y1: y(v), y2: y(v) }),
        svgNode('text', { class: 'tick', x: m.left - 6, y: y(v), 'text-anchor': 'end', 'dominant-baseline': 'middle' },
          v.toLocaleString()));
    }
    svg.append(svgNode('text', {
      class: 'axis-title', x: 0, y: 0, 'text-anchor': 'middle',
      transform: `translate(12 ${m.top + plotH / 2}) rotate(-90)`,
    }, 'Requests'));

    // The time axis: a label per day, or fewer where they would not fit.
    const perDay = span.size === DAY ? 1 : 24;
    const dayW = slot * perDay;
    const every = Math.max(1, Math.ceil(64 / dayW));
    // In hours, each label marks 00:00 UTC of its day.
    const midnight = list.findIndex((b) => b.start % DAY === 0);
    for (let i = Math.max(0, midnight); i < list.length; i += perDay * every) {
      const x = m.left + i * slot + (span.size === DAY ? slot / 2 : 0);
      svg.append(
        svgNode('line', { class: 'tick-line', x1: x, x2: x, y1: m.top + plotH, y2: m.top + plotH + 4 }),
        svgNode('text', { class: 'tick', x, y: m.top + plotH + 16, 'text-anchor': span.size === DAY ? 'middle' : 'start' },
          utcDay.format(new Date(list[i].start))));
    }
    svg.append(svgNode('text', { class: 'axis-title', x: m.left + plotW / 2, y: height - 6, 'text-anchor': 'middle' },
      span.size === DAY ? 'Day (UTC)' : 'Hour (UTC)'));

    // The bars, each outcome on top of the one before.
    list.forEach((b, i) => {
      if (!b.total) return;
      const g = svgNode('g', { class: 'bar' }, svgNode('title', null, `${bucketName(b, span)} UTC: ${countsText(b)}`));
      let base = 0;
      for (const o of OUTCOMES) {
        const n = b[o.field];
        if (!n) continue;
        // A single request still shows as a sliver next to thousands.
        const h = Math.max(1, (n / top) * plotH);
        g.append(svgNode('rect', {
          class: o.cls, x: m.left + i * slot + (slot - barW) / 2, y: y(base) - h, width: barW, height: h,
        }));
        base += n;
      }
      svg.append(g);
    });
    if (!all) {
      svg.append(svgNode('text', { class: 'empty-text', x: m.left + plotW / 2, y: m.top + plotH / 2, 'text-anchor': 'middle' },
        'No requests in this span.'));
    }
    return svg;
  }

  /** Draws the open key's chart, legend, totals, table and last client from `usage.data`. */
  function renderUsage() {
    const { data, span } = usage.data;
    const key = state.keys.find((k) => k.id === usage.key);
    const name = key ? key.name : usage.key;
    const list = buckets(data, span);
    const box = $('#usage-chart');
    const width = Math.max(300, Math.floor(box.clientWidth || 640));
    box.replaceChildren(usageChart(list, span, data.totals, name, width));

    $('#usage-legend').replaceChildren(...OUTCOMES.map((o) => h('li', null,
      h('span', { class: `swatch ${o.cls}`, 'aria-hidden': 'true' }), `${o.label}: `,
      h('strong', null, data.totals[o.field].toLocaleString()))));
    const all = OUTCOMES.reduce((n, o) => n + data.totals[o.field], 0);
    $('#usage-total').textContent = `${all.toLocaleString()} request${all === 1 ? '' : 's'} from `
      + `${utcHour.format(new Date(data.from))} to ${utcHour.format(new Date(data.to))} UTC.`;
    $('#usage-last-used').replaceChildren(when(data.lastUsedAt, 'never'));
    $('#usage-last-address').textContent = data.lastAddress || '—';
    const agent = $('#usage-last-agent');
    agent.textContent = data.lastUserAgent || '—';
    agent.title = data.lastUserAgent || '';

    $('#usage-table-when').textContent = span.size === DAY ? 'Day (UTC)' : 'Hour (UTC)';
    const rows = list.filter((b) => b.total);
    $('#usage-table tbody').replaceChildren(...(rows.length ? rows.map((b) => h('tr', null,
      h('th', { scope: 'row', class: 'nowrap' }, bucketName(b, span)),
      OUTCOMES.map((o) => h('td', { class: 'num' }, b[o.field].toLocaleString()))))
      : [h('tr', null, h('td', { colspan: 5, class: 'muted' }, 'No requests in this span.'))]));
  }

  /** Asks for the open key's usage over the selected span and draws it. */
  async function loadUsage() {
    const seq = ++usage.seq;
    const span = usageSpan();
    const error = $('#usage-form .error');
    try {
      const data = await get(withQuery('/api/user.apiKeyUsage', {
        apiKeyId: usage.key, from: new Date(span.first).toISOString(),
      }));
      if (seq !== usage.seq || !usage.key) return;
      clearError(error);
      usage.data = { data, span };
      renderUsage();
    } catch (err) {
      if (seq !== usage.seq) return;
      showError(error, err);
    }
  }

  function markUsageButtons() {
    for (const b of document.querySelectorAll('#keys-table button[data-action="usage"]')) {
      b.setAttribute('aria-expanded', String(b.dataset.id === usage.key));
    }
  }

  async function openUsage(key) {
    usage.key = key.id;
    usage.data = null;
    $('#usage-key-name').textContent = key.name;
    $('#usage-chart').replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
    for (const id of ['#usage-legend', '#usage-table tbody']) $(id).replaceChildren();
    $('#usage-total').textContent = '';
    $('#usage').hidden = false;
    markUsageButtons();
    focus('#usage-title');
    await loadUsage();
  }

  /** Closes the usage panel; focus goes back to the key's button when `refocusKey`. */
  function closeUsage(refocusKey) {
    const id = usage.key;
    usage.key = null;
    usage.data = null;
    usage.seq += 1;
    $('#usage').hidden = true;
    $('#usage-chart').replaceChildren();
    clearError($('#usage-form .error'));
    markUsageButtons();
    if (refocusKey && id) focus(`#keys-table button[data-action="usage"][data-id="${id}"]`);
  }

  $('#usage-form').addEventListener('submit', (event) => event.preventDefault());
  for (const id of ['#usage-span', '#usage-step']) $(id).addEventListener('change', () => loadUsage());
  $('#usage-close').addEventListener('click', () => closeUsage(true));

  // The chart is drawn to the width it has, so that its text keeps its size on a phone.
  let resizeFrame = 0;
  window.addEventListener('resize', () => {
    cancelAnimationFrame(resizeFrame);
    resizeFrame = requestAnimationFrame(() => {
      if (usage.key && usage.data) renderUsage();
    });
  });

  // Sessions

  function renderSessions(sessions) {
    const error = $('#sessions-error');
    const tbody = $('#sessions-table tbody');
    if (sessions.status === 'rejected') {
      showError(error, sessions.reason);
      return;
    }
    clearError(error);
    tbody.replaceChildren(...sessions.value.map(({ session: s, current }) => h('tr', null,
      h('td', { class: 'nowrap' }, when(s.createdAt), current ? ' ' : null,
        current ? h('span', { class: 'badge info' }, 'This session') : null),
      h('td', { class: 'nowrap' }, when(s.expiresAt)),
      h('td', { class: 'nowrap' }, s.ipAddress || '—'),
      h('td', { class: 'agent', title: s.userAgent || null }, describeAgent(s.userAgent)),
      h('td', { class: 'actions' }, current ? null : h('button', {
        type: 'button', class: 'button secondary small', 'data-id': s.id,
        'aria-label': `Revoke the session signed in ${dateFormat.format(new Date(s.createdAt))} from ${describeAgent(s.userAgent)}`,
      }, 'Revoke')))));
  }

  $('#sessions-table tbody').addEventListener('click', async (event) => {
    const button = event.target.closest('button[data-id]');
    if (!button || isBusy(button)) return;
    try {
      await busy(button, () => post('/api/user.revokeSession', { sessionId: button.dataset.id }));
      await reloadSessions();
      toast('Session revoked.');
      focus('#sessions-title');
    } catch (err) {
      toast(err.message, 'error');
    }
  });

  // Members, for an owner or admin: who is in the organization, their roles, permissions
  // and reset links, and the invitations.

  const MANAGERS = new Set(['owner', 'admin']);

  /** Whether the caller manages the active organization's members. */
  const isManager = () => Boolean(state.active && MANAGERS.has(state.active.role));

  /** A member's flags, with what each lets it do, in the order of the API. */
  const FLAGS = [
    ['canCreateProjects', 'create and rename projects'],
    ['canDeleteProjects', 'remove projects'],
    ['canCreateEnvironments', 'create and rename environments'],
    ['canDeleteEnvironments', 'remove environments'],
    ['canCreateServices', 'create and change applications and their domains'],
    ['canDeleteServices', 'delete applications and domains'],
    ['canAccessToAPI', 'create API keys'],
  ];
  const capitalized = (text) => text.charAt(0).toUpperCase() + text.slice(1);

  async function reloadMembers() {
    const tbody = $('#members-table tbody');
    const error = $('#members-error');
    const manager = isManager();
    $('#members').hidden = !manager;
    $('#invitations').hidden = !manager;
    $('#organization-members-note').hidden = manager;
    renderOrganization();
    state.members = [];
    if (!manager) {
      tbody.replaceChildren();
      $('#invitations-table tbody').replaceChildren();
      closeMember(false);
      return;
    }
    $('#members-org-name').textContent = state.active.name;
    const [members] = await Promise.all([
      getPage('/api/user.all').then((page) => ({ page }), (err) => ({ err })),
      reloadInvitations(),
    ]);
    if (!signedIn) return;
    if (members.err) {
      tbody.replaceChildren();
      $('#members-more').hidden = true;
      showError(error, members.err);
      return;
    }
    clearError(error);
    state.members = members.page.items;
    renderMembers(members.page.total);
    // The member being edited left, or the organization changed.
    if (editing.member && !state.members.some((m) => m.id === editing.member.id)) closeMember(false);
  }

  /** The active organization, and what the caller's role lets it do to it. */
  function renderOrganization() {
    const org = state.active;
    $('#organization-summary').textContent = org
      ? `${org.name}: you are its ${org.role}.`
      : 'You have no active organization.';
    const manager = Boolean(org && MANAGERS.has(org.role));
    $('#org-rename-form').hidden = !manager;
    if (manager) $('#org-rename-name').value = org.name;
    $('#org-delete').hidden = !(org && org.role === 'owner');
    $('#org-manage-note').hidden = !org || org.role === 'owner';
    for (const sel of ['#org-rename-form .error', '#org-create-form .error', '#org-delete .error']) clearError($(sel));
  }

  $('#org-rename-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const button = $('button[type=submit]', form);
    const error = $('.error', form);
    const org = state.active;
    if (isBusy(button) || !org) return;
    clearError(error);
    try {
      const updated = await busy(button, () => post('/api/organization.update', {
        organizationId: org.id, name: $('#org-rename-name').value.trim(),
      }));
      await refresh();
      toast(`The organization is now called ${updated.name}.`);
    } catch (err) {
      showError(error, err);
    }
  });

  $('#org-create-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const button = $('button[type=submit]', form);
    const error = $('.error', form);
    if (isBusy(button)) return;
    clearError(error);
    try {
      const org = await busy(button, async () => {
        const made = await post('/api/organization.create', { name: $('#org-create-name').value.trim() });
        await post('/api/organization.setActive', { organizationId: made.id });
        return made;
      });
      form.reset();
      await refresh();
      toast(`${org.name} is created, and you now work in it.`);
      focus('#organization-title');
    } catch (err) {
      showError(error, err);
    }
  });

  $('#org-delete-button').addEventListener('click', async (event) => {
    const button = event.currentTarget;
    const error = $('#org-delete .error');
    const org = state.active;
    if (isBusy(button) || !org) return;
    clearError(error);
    const answer = await confirmDialog({
      title: `Delete ${org.name}?`,
      text: 'Everything in it goes with it, and its members lose access at once. This cannot be undone.',
      ok: 'Delete organization',
    });
    if (!answer) return;
    try {
      await busy(button, () => post('/api/organization.delete', { organizationId: org.id }));
      await refresh();
      toast(`${org.name} is deleted.`);
      focus('#organization-title');
    } catch (err) {
      showError(error, err);
    }
  });

  /** Whether the caller may change `m`: not itself, not the owner, and an admin no other
   * admin (the server decides in the end). */
  function mayManage(m) {
    if (!state.me || m.userId === state.me.id || m.role === 'owner') return false;
    return !(state.active.role === 'admin' && m.role === 'admin');
  }

  const memberName = (m) => (m.user ? m.user.name : m.userId);

  function renderMembers(total) {
    const me = state.me ? state.me.id : null;
    $('#members-table tbody').replaceChildren(...state.members.map((m) => h('tr', null,
      h('td', { class: 'name' }, memberName(m), m.userId === me ? h('span', { class: 'sub' }, 'you') : null),
      h('td', null, m.user ? m.user.email : '—'),
      h('td', null, m.role),
      h('td', null, m.user && m.user.twoFactorEnabled ? h('span', { class: 'badge ok' }, 'On') : h('span', { class: 'badge' }, 'Off')),
      h('td', { class: 'nowrap' }, when(m.createdAt, '—', true)),
      h('td', { class: 'actions' }, mayManage(m) ? [
        h('button', {
          type: 'button', class: 'button secondary small', 'data-action': 'manage', 'data-id': m.userId,
          'aria-controls': 'member-editor', 'aria-label': `Manage ${memberName(m)}`,
        }, 'Manage'),
        h('button', {
          type: 'button', class: 'button secondary small', 'data-action': 'reset', 'data-id': m.userId,
          'aria-label': `Make a password-reset link for ${memberName(m)}`,
        }, 'Reset link'),
      ] : h('span', { class: 'sub' }, m.userId === me ? 'yourself' : `${m.role === 'owner' ? 'the owner' : 'an admin'}: not yours to change`)))));
    const more = $('#members-more');
    more.hidden = total <= state.members.length;
    more.textContent = `Showing the first ${state.members.length} of ${total.toLocaleString()} members.`;
  }

  $('#members-table tbody').addEventListener('click', async (event) => {
    const button = event.target.closest('button[data-id]');
    if (!button || isBusy(button)) return;
    const member = state.members.find((m) => m.userId === button.dataset.id);
    if (!member) return;
    if (button.dataset.action === 'manage') {
      await busy(button, () => openMember(member.userId));
      return;
    }
    const name = memberName(member);
    try {
      const link = await busy(button, () => post('/api/user.createPasswordReset', { userId: member.userId }));
      await showSecret({
        title: `Password-reset link for ${name}`,
        label: 'Link to send',
        secret: link.url,
        note: [h('strong', null, 'Valid for one hour, once'),
          ` (until ${dateFormat.format(new Date(link.expiresAt))}). Send it to ${name} alone: whoever opens it can set the password. You will not see it again; a new link cancels this one.`],
        what: 'link',
        done: 'Done',
      });
    } catch (err) {
      toast(err.message, 'error');
    }
  });

  // One member's role, flags, access lists and removal, prefilled from `user.one`.

  const editing = { member: null };

  async function openMember(userId) {
    const error = $('#member-editor-error');
    $('#member-editor').hidden = false;
    for (const el of document.querySelectorAll('#member-editor .error')) clearError(el);
    try {
      editing.member = await get(withQuery('/api/user.one', { userId }));
    } catch (err) {
      editing.member = null;
      $('#member-editor-title').textContent = 'Manage a member';
      for (const id of ['#member-role-form', '#member-perms-form', '#member-perms-admin', '#member-remove-box']) $(id).hidden = true;
      showError(error, err);
      focus('#member-editor-title');
      return;
    }
    renderMember();
    focus('#member-editor-title');
  }

  function renderMember() {
    const m = editing.member;
    const name = memberName(m);
    $('#member-editor-title').textContent = `Manage ${name}`;
    $('#member-role-form').hidden = false;
    $('#member-remove-box').hidden = false;
    $('#member-role').value = m.role;
    const member = m.role === 'member';
    $('#member-perms-form').hidden = !member;
    $('#member-perms-admin').hidden = member;
    if (member) renderPermissions(m.permissions);
  }

  function renderPermissions(p) {
    $('#member-flags').replaceChildren(...FLAGS.map(([flag, what]) => h('div', { class: 'check' },
      h('input', { id: `perm-${flag}`, type: 'checkbox', name: flag, checked: Boolean(p[flag]) }),
      h('label', { for: `perm-${flag}` }, capitalized(what)))));
    const has = {
      project: new Set(p.accessedProjects),
      environment: new Set(p.accessedEnvironments),
      application: new Set(p.accessedServices),
    };
    const box = (kind, id, label) => h('div', { class: 'check' },
      h('input', { id: `access-${id}`, type: 'checkbox', value: id, 'data-kind': kind, checked: has[kind].has(id) }),
      h('label', { for: `access-${id}` }, label));
    const apps = (env) => h('ul', null, env.applications.map((app) => h('li', null,
      box('application', app.applicationId, `${app.name} (application)`))));
    const envs = (proj) => h('ul', null, proj.environments.map((env) => h('li', null,
      box('environment', env.environmentId, `${env.name} (environment)`), apps(env))));
    $('#member-access').replaceChildren(...state.projects.map((proj) => h('li', null,
      box('project', proj.projectId, proj.name), envs(proj))));
    $('#member-access-empty').hidden = state.projects.length > 0;
  }

  // What holds a resource is checked with it; what it holds is unchecked with it.
  $('#member-access').addEventListener('change', (event) => {
    const input = event.target;
    if (!(input instanceof HTMLInputElement)) return;
    const item = input.closest('li');
    if (input.checked) {
      for (let li = item.parentElement.closest('li'); li; li = li.parentElement.closest('li')) {
        $(':scope > .check input', li).checked = true;
      }
    } else {
      for (const inner of item.querySelectorAll('ul input')) inner.checked = false;
    }
  });

  function closeMember(moveFocus) {
    const had = !$('#member-editor').hidden;
    editing.member = null;
    $('#member-editor').hidden = true;
    if (moveFocus && had) focus('#members-title');
  }

  $('#member-editor-close').addEventListener('click', () => closeMember(true));

  onSubmit('#member-role-form', async (form, button) => {
    const m = editing.member;
    if (!m) return;
    const role = $('#member-role').value;
    await busy(button, async () => {
      await post('/api/organization.updateMemberRole', { memberId: m.id, role });
      editing.member = await get(withQuery('/api/user.one', { userId: m.userId }));
    });
    renderMember();
    toast(`${memberName(m)} is now ${role === 'admin' ? 'an admin' : 'a member'}.`);
    await reloadMembers();
  });

  onSubmit('#member-perms-form', async (form, button) => {
    const m = editing.member;
    if (!m) return;
    const body = { userId: m.userId };
    for (const [flag] of FLAGS) body[flag] = $(`#perm-${flag}`).checked;
    const ticked = (kind) => [...$('#member-access').querySelectorAll(`input[data-kind=${kind}]:checked`)].map((i) => i.value);
    body.accessedProjects = ticked('project');
    body.accessedEnvironments = ticked('environment');
    body.accessedServices = ticked('application');
    const saved = await busy(button, () => post('/api/user.assignPermissions', body));
    editing.member.permissions = saved;
    renderPermissions(saved);
    toast(`${memberName(m)}'s permissions are saved; they apply to its next request.`);
  });

  $('#member-remove').addEventListener('click', async (event) => {
    const button = event.currentTarget;
    const error = $('#member-remove-box .error');
    const m = editing.member;
    if (isBusy(button) || !m) return;
    clearError(error);
    const name = memberName(m);
    const answer = await confirmDialog({
      title: `Remove ${name}?`,
      text: `${name} leaves ${state.active.name} at once, and its keys for it stop working. Its account stays; an invitation brings it back.`,
      ok: 'Remove member',
    });
    if (!answer) return;
    try {
      await busy(button, () => post('/api/user.remove', { userId: m.userId }));
      closeMember(false);
      await reloadMembers();
      toast(`${name} is no longer a member.`);
      focus('#members-title');
    } catch (err) {
      showError(error, err);
    }
  });

  // Invitations: made with a link shown once, listed, and cancelled while pending.

  let invitations = [];

  /** The dashboard's address that signs a new user up with `token`, or lets one accept it. */
  const invitationLink = (token) => `${window.location.origin}${window.location.pathname}#invite=${encodeURIComponent(token)}`;

  /** An invitation's status as it stands now: a pending one past its time is expired. */
  const invitationStatus = (i) => (i.status === 'pending' && Date.parse(i.expiresAt) <= Date.now() ? 'expired' : i.status);
  const STATUS_BADGES = { pending: 'badge info', accepted: 'badge ok', canceled: 'badge', expired: 'badge off' };

  async function reloadInvitations() {
    const error = $('#invitations-error');
    try {
      // The API lists them oldest first, 100 at most: the newest are on the last page.
      let page = await getPage('/api/organization.allInvitations');
      if (page.total > page.items.length) {
        page = await getPage(withQuery('/api/organization.allInvitations', { offset: page.total - 100, limit: 100 }));
      }
      if (!signedIn) return;
      clearError(error);
      invitations = [...page.items].reverse();
      renderInvitations(page.total);
    } catch (err) {
      invitations = [];
      $('#invitations-table tbody').replaceChildren();
      $('#invitations-more').hidden = true;
      $('#invitations-empty').hidden = true;
      showError(error, err);
    }
  }

  function renderInvitations(total) {
    $('#invitations-table tbody').replaceChildren(...invitations.map((i) => {
      const status = invitationStatus(i);
      return h('tr', null,
        h('td', { class: 'name' }, i.email),
        h('td', null, i.role),
        h('td', null, h('span', { class: STATUS_BADGES[status] || 'badge' }, status)),
        h('td', { class: 'nowrap' }, when(i.createdAt)),
        h('td', { class: 'nowrap' }, when(i.expiresAt)),
        h('td', { class: 'actions' }, status === 'pending' ? h('button', {
          type: 'button', class: 'button secondary small danger-text', 'data-id': i.id,
          'aria-label': `Cancel the invitation for ${i.email}`,
        }, 'Cancel') : null));
    }));
    $('#invitations-table').hidden = invitations.length === 0;
    $('#invitations-empty').hidden = invitations.length !== 0;
    const more = $('#invitations-more');
    more.hidden = total <= invitations.length;
    more.textContent = `Showing the newest ${invitations.length} of ${total.toLocaleString()} invitations.`;
  }

  onSubmit('#invite-form', async (form, button) => {
    const email = $('#invite-email').value.trim();
    const made = await busy(button, () => post('/api/organization.inviteMember', { email, role: $('#invite-role').value }));
    form.reset();
    await reloadInvitations();
    await showSecret({
      title: `Invitation for ${made.email}`,
      label: 'Link to send',
      secret: invitationLink(made.token),
      note: [h('strong', null, 'Copy it now: you will not see it again.'),
        ` It makes an account for ${made.email} (or adds an existing one) as ${made.role} of ${state.active.name}, once, until ${dateFormat.format(new Date(made.expiresAt))}.`],
      what: 'link',
      done: 'Done',
    });
  });

  $('#invitations-table tbody').addEventListener('click', async (event) => {
    const button = event.target.closest('button[data-id]');
    if (!button || isBusy(button)) return;
    const inv = invitations.find((i) => i.id === button.dataset.id);
    if (!inv) return;
    try {
      await busy(button, () => post('/api/organization.removeInvitation', { invitationId: inv.id }));
      await reloadInvitations();
      toast(`The invitation for ${inv.email} is cancelled.`);
      focus('#invitations-title');
    } catch (err) {
      toast(err.message, 'error');
    }
  });

  // Projects: the tree of the active organization's projects, environments and
  // applications, and each application's domains, with what the caller's role allows.

  /** Whether the caller holds `flag` in the active organization (owners and admins hold
   * them all). */
  const may = (flag) => Boolean(state.perms && state.perms[flag]);

  /** Applications whose domains are open, and the domains last loaded for each. */
  const domains = { open: new Set(), loaded: new Map(), proxy: 'traefik' };

  /** Says what the caller's role keeps it from doing here, and why. */
  function renderRights() {
    const note = $('#projects-rights');
    const missing = FLAGS.filter(([flag]) => flag !== 'canAccessToAPI' && !may(flag)).map(([, what]) => what);
    note.hidden = missing.length === 0 || !state.active;
    const last = missing.length > 1 ? ` or ${missing.pop()}` : '';
    note.textContent = `As a ${state.active ? state.active.role : 'member'} of this organization you may not ${missing.join(', ')}${last}: those controls are hidden. An owner or admin gives members these permissions under Organization.`;
    $('#project-create-form').hidden = !may('canCreateProjects');
  }

  const actionButton = (action, id, label, text, extra = '') => h('button', {
    type: 'button', class: `button secondary small${extra}`, 'data-action': action, 'data-id': id, 'aria-label': label,
  }, text);

  function renderProjects(projects) {
    const error = $('#projects-error');
    const list = $('#projects-list');
    state.projects = projects.status === 'fulfilled' ? projects.value : [];
    renderKeyProjects();
    renderRights();
    if (projects.status === 'rejected') {
      list.replaceChildren();
      $('#projects-empty').hidden = true;
      showError(error, projects.reason);
      return;
    }
    clearError(error);
    const apps = new Set();
    list.replaceChildren(...state.projects.map((p) => projectItem(p, apps)));
    $('#projects-empty').hidden = state.projects.length !== 0;
    // Applications gone from the tree drop their open panels.
    for (const id of [...domains.open]) if (!apps.has(id)) domains.open.delete(id);
    for (const id of domains.open) renderDomains(id);
  }

  function projectItem(p, apps) {
    return h('li', { class: 'project' },
      h('div', { class: 'tree-head' },
        h('div', null,
          h('h3', { class: 'name' }, p.name),
          p.description ? h('p', { class: 'desc' }, p.description) : null,
          h('p', { class: 'meta' }, 'created ', when(p.createdAt, '—', true))),
        h('div', { class: 'buttons' },
          may('canCreateProjects') ? actionButton('rename-project', p.projectId, `Rename project ${p.name}`, 'Rename') : null,
          may('canCreateEnvironments') ? actionButton('add-environment', p.projectId, `Add an environment to ${p.name}`, 'Add environment') : null,
          may('canDeleteProjects') ? actionButton('remove-project', p.projectId, `Remove project ${p.name}`, 'Remove', ' danger-text') : null)),
      h('ul', { class: 'environments' }, p.environments.map((e) => environmentItem(e, apps))));
  }

  function environmentItem(e, apps) {
    const changeable = !e.isDefault;
    return h('li', { class: 'environment' },
      h('div', { class: 'tree-head' },
        h('div', null,
          h('span', { class: 'name' }, e.name),
          e.isDefault ? h('span', { class: 'badge' }, 'default') : null,
          e.description ? h('span', { class: 'sub' }, e.description) : null,
          e.isDefault && (may('canCreateEnvironments') || may('canDeleteEnvironments'))
            ? h('span', { class: 'sub' }, 'The default environment cannot be renamed or removed.') : null),
        h('div', { class: 'buttons' },
          may('canCreateEnvironments') && changeable ? actionButton('rename-environment', e.environmentId, `Rename environment ${e.name}`, 'Rename') : null,
          may('canCreateServices') ? actionButton('add-application', e.environmentId, `Add an application to ${e.name}`, 'Add application') : null,
          may('canDeleteEnvironments') && changeable ? actionButton('remove-environment', e.environmentId, `Remove environment ${e.name}`, 'Remove', ' danger-text') : null)),
      e.applications.length
        ? h('ul', { class: 'applications' }, e.applications.map((a) => applicationItem(a, apps)))
        : h('p', { class: 'empty sub' }, 'No applications.'));
  }

  function applicationItem(a, apps) {
    apps.add(a.applicationId);
    const open = domains.open.has(a.applicationId);
    return h('li', { class: 'application' },
      h('div', { class: 'tree-head' },
        h('div', null,
          h('span', { class: 'name' }, a.name),
          h('span', { class: 'sub mono' }, a.appName)),
        h('div', { class: 'buttons' },
          h('button', {
            type: 'button', class: 'button secondary small', 'data-action': 'domains', 'data-id': a.applicationId,
            'aria-expanded': String(open), 'aria-controls': `domains-${a.applicationId}`,
            'aria-label': `Domains of ${a.name}`,
          }, 'Domains'),
          may('canCreateServices') ? actionButton('edit-application', a.applicationId, `Edit application ${a.name}`, 'Edit') : null,
          may('canDeleteServices') ? actionButton('delete-application', a.applicationId, `Delete application ${a.name}`, 'Delete', ' danger-text') : null)),
      h('div', { id: `domains-${a.applicationId}`, class: 'domains', hidden: !open }));
  }

  /** Finds a project, environment or application of the tree by id. */
  function findResource(kind, id) {
    for (const p of state.projects) {
      if (kind === 'project' && p.projectId === id) return p;
      for (const e of p.environments) {
        if (kind === 'environment' && e.environmentId === id) return e;
        for (const a of e.applications) if (kind === 'application' && a.applicationId === id) return a;
      }
    }
    return null;
  }

  async function reloadProjects() {
    const projects = await Promise.allSettled([get('/api/project.all')]);
    if (signedIn) renderProjects(projects[0]);
  }

  const nameField = (value, label = 'Name') => ({ name: 'name', label, value, required: true });
  const descriptionField = (value) => ({ name: 'description', label: 'Description', value: value || '', maxlength: 10000 });
  const optional = (v) => v || undefined;

  /** What each button of the tree does: a dialog or a confirmation, then the API. */
  const PROJECT_ACTIONS = {
    'rename-project': (p) => editDialog({
      title: `Rename ${p.name}`, ok: 'Save', fields: [nameField(p.name), descriptionField(p.description)],
      submit: (v) => post('/api/project.update', { projectId: p.projectId, name: v.name, description: v.description }),
    }).then((r) => r && `The project is now called ${r.name}.`),
    'add-environment': (p) => editDialog({
      title: `A new environment in ${p.name}`, ok: 'Create environment',
      fields: [nameField('', 'Name'), descriptionField('')],
      submit: (v) => post('/api/environment.create', { projectId: p.projectId, name: v.name, description: optional(v.description) }),
    }).then((r) => r && `The environment ${r.name} is created.`),
    'remove-project': (p) => confirmDialog({
      title: `Remove ${p.name}?`,
      text: 'Its environments, applications and their domains go with it. This cannot be undone.',
      ok: 'Remove project',
    }).then((yes) => yes && post('/api/project.remove', { projectId: p.projectId }).then(() => `${p.name} is removed.`)),
    'rename-environment': (e) => editDialog({
      title: `Rename ${e.name}`, ok: 'Save', fields: [nameField(e.name), descriptionField(e.description)],
      submit: (v) => post('/api/environment.update', { environmentId: e.environmentId, name: v.name, description: v.description }),
    }).then((r) => r && `The environment is now called ${r.name}.`),
    'add-application': (e) => editDialog({
      title: `A new application in ${e.name}`, ok: 'Create application',
      fields: [nameField(''), {
        name: 'appName', label: 'Technical name', value: '', maxlength: 63,
        hint: 'Unique in the organization; made from the name when left empty.',
      }, descriptionField('')],
      submit: (v) => post('/api/application.create', {
        environmentId: e.environmentId, name: v.name, appName: optional(v.appName), description: optional(v.description),
      }),
    }).then((r) => r && `The application ${r.name} is created.`),
    'remove-environment': (e) => confirmDialog({
      title: `Remove ${e.name}?`,
      text: 'Its applications and their domains go with it. This cannot be undone.',
      ok: 'Remove environment',
    }).then((yes) => yes && post('/api/environment.remove', { environmentId: e.environmentId }).then(() => `${e.name} is removed.`)),
    'edit-application': (a) => get(withQuery('/api/application.one', { applicationId: a.applicationId })).then((full) => editDialog({
      title: `Edit ${a.name}`, ok: 'Save',
      fields: [nameField(full.name), { name: 'appName', label: 'Technical name', value: full.appName, required: true, maxlength: 63 },
        descriptionField(full.description)],
      submit: (v) => post('/api/application.update', {
        applicationId: a.applicationId, name: v.name, appName: v.appName, description: v.description,
      }),
    })).then((r) => r && `The application is now called ${r.name}.`),
    'delete-application': (a) => confirmDialog({
      title: `Delete ${a.name}?`,
      text: 'Its domains go with it, and forward auth stops letting requests through to them. This cannot be undone.',
      ok: 'Delete application',
    }).then((yes) => yes && post('/api/application.delete', { applicationId: a.applicationId }).then(() => `${a.name} is deleted.`)),
  };
  const ACTION_KINDS = {
    'rename-project': 'project', 'add-environment': 'project', 'remove-project': 'project',
    'rename-environment': 'environment', 'add-application': 'environment', 'remove-environment': 'environment',
    'edit-application': 'application', 'delete-application': 'application',
  };

  $('#projects-list').addEventListener('click', async (event) => {
    const btn = event.target.closest('button[data-action]');
    if (!btn || isBusy(btn)) return;
    const { action, id } = btn.dataset;
    if (action === 'domains') {
      toggleDomains(id, btn);
      return;
    }
    if (action.endsWith('-domain') || action === 'copy-snippet') {
      await domainAction(action, id, btn);
      return;
    }
    const target = findResource(ACTION_KINDS[action], id);
    if (!target) return;
    try {
      const done = await busy(btn, () => PROJECT_ACTIONS[action](target));
      if (!done) return;
      await reloadProjects();
      toast(done);
    } catch (err) {
      toast(err.message, 'error');
    }
  });

  onSubmit('#project-create-form', async (form, button) => {
    const made = await busy(button, () => post('/api/project.create', {
      name: $('#project-name').value.trim(), description: optional($('#project-description').value.trim()),
    }));
    form.reset();
    await reloadProjects();
    toast(`The project ${made.project.name} is created, with its ${made.environment.name} environment.`);
  });

  // An application's domains, and the proxy configuration that guards them.

  async function toggleDomains(appId, btn) {
    const panel = $(`#domains-${CSS.escape(appId)}`);
    const open = !domains.open.has(appId);
    btn.setAttribute('aria-expanded', String(open));
    if (!open) {
      domains.open.delete(appId);
      panel.hidden = true;
      return;
    }
    domains.open.add(appId);
    panel.hidden = false;
    await loadDomains(appId);
  }

  async function loadDomains(appId) {
    try {
      domains.loaded.set(appId, await get(withQuery('/api/domain.byApplicationId', { applicationId: appId })));
    } catch (err) {
      domains.loaded.set(appId, err);
    }
    if (domains.open.has(appId)) renderDomains(appId);
  }

  function renderDomains(appId) {
    const panel = $(`#domains-${CSS.escape(appId)}`);
    const app = findResource('application', appId);
    if (!panel || !app) return;
    const list = domains.loaded.get(appId);
    if (list === undefined) {
      panel.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
      return;
    }
    if (list instanceof Error) {
      panel.replaceChildren(h('p', { class: 'error', role: 'alert' }, list.message));
      return;
    }
    panel.replaceChildren(
      h('h4', null, `Domains of ${app.name}`),
      list.length ? h('table', { class: 'domains-table' },
        h('caption', { class: 'visually-hidden' }, `Domains of ${app.name}`),
        h('thead', null, h('tr', null,
          h('th', { scope: 'col' }, 'Host'), h('th', { scope: 'col' }, 'Path'),
          h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')))),
        h('tbody', null, list.map((d) => h('tr', null,
          h('td', { class: 'name mono' }, d.host),
          h('td', { class: 'mono' }, d.path),
          h('td', { class: 'actions' },
            may('canCreateServices') ? actionButton('edit-domain', d.domainId, `Edit domain ${d.host}${d.path}`, 'Edit') : null,
            may('canDeleteServices') ? actionButton('delete-domain', d.domainId, `Delete domain ${d.host}${d.path}`, 'Delete', ' danger-text') : null))))) : h('p', { class: 'empty' }, 'No domains: forward auth lets no request through to this application.'),
      may('canCreateServices') ? actionButton('add-domain', appId, `Add a domain to ${app.name}`, 'Add domain') : null,
      list.length ? h('div', { class: 'snippet' },
        h('label', { for: `snippet-proxy-${appId}` }, 'Proxy configuration for'),
        h('div', { class: 'row' },
          h('select', { id: `snippet-proxy-${appId}`, 'data-app': appId, class: 'snippet-proxy' },
            Object.entries(PROXIES).map(([value, p]) => h('option', { value, selected: value === domains.proxy }, p.name))),
          h('button', { type: 'button', class: 'button secondary', 'data-action': 'copy-snippet', 'data-id': appId }, 'Copy')),
        h('label', { for: `snippet-${appId}`, class: 'visually-hidden' }, `Configuration for ${app.name}`),
        h('textarea', { id: `snippet-${appId}`, class: 'mono', readonly: true, rows: '14', spellcheck: 'false' },
          PROXIES[domains.proxy].snippet(app, list)),
        h('p', { class: 'hint', id: `snippet-copied-${appId}`, role: 'status', 'aria-live': 'polite' },
          PROXIES[domains.proxy].hint)) : null);
  }

  /** The address a proxy uses to reach keygate: this page's, as the browser sees it. */
  const keygateUrl = () => window.location.origin;
  /** Where the snippets send allowed requests: a placeholder for the user's service. */
  const UPSTREAM = 'http://127.0.0.1:8080';
  const IDENTITY_HEADERS = 'X-Keygate-User-Id X-Keygate-Organization-Id X-Keygate-Role X-Keygate-Auth X-Keygate-Key-Id Remote-User Remote-Email Remote-Name Remote-Groups';

  /** A domain's path as a prefix that holds itself and what is below it. */
  const below = (path) => (path === '/' ? '/' : `${path.replace(/\/$/, '')}/`);

  const PROXIES = {
    traefik: {
      name: 'Traefik 3 (dynamic configuration)',
      hint: 'Put it in a file of Traefik\'s file provider, and set the service\'s address.',
      snippet: (app, list) => [
        'http:',
        '  routers:',
        ...list.map((d, n) => [
          `    ${app.appName}-${n + 1}:`,
          `      rule: "Host(\`${d.host}\`)${d.path === '/' ? '' : ` && (Path(\`${d.path}\`) || PathPrefix(\`${below(d.path)}\`))`}"`,
          '      middlewares: [keygate, strip-credentials]',
          `      service: ${app.appName}`,
        ]).flat(),
        '  middlewares:',
        '    keygate:',
        '      forwardAuth:',
        `        address: "${keygateUrl()}/api/authz/forward-auth"`,
        '        trustForwardHeader: false',
        `        authResponseHeaders: [${IDENTITY_HEADERS.split(' ').join(', ')}]`,
        '    strip-credentials:',
        '      headers:',
        '        customRequestHeaders:',
        '          X-Api-Key: ""',
        '  services:',
        `    ${app.appName}:`,
        '      loadBalancer:',
        '        servers:',
        `          - url: "${UPSTREAM}" # your service`,
      ].join('\n'),
    },
    caddy: {
      name: 'Caddy (Caddyfile)',
      hint: 'Add it to your Caddyfile, and set the service\'s address.',
      snippet: (app, list) => [...new Set(list.map((d) => d.host))].map((host) => {
        const paths = list.filter((d) => d.host === host).map((d) => d.path);
        const all = paths.includes('/');
        return [
          `${host} {`,
          all ? null : `\t@keygate path ${paths.map((p) => `${p} ${below(p)}*`).join(' ')}`,
          `\tforward_auth ${all ? '' : '@keygate '}${keygateUrl()} {`,
          '\t\turi /api/authz/forward-auth?',
          `\t\tcopy_headers ${IDENTITY_HEADERS}`,
          '\t}',
          '\trequest_header -X-Api-Key',
          `\treverse_proxy ${UPSTREAM} # your service`,
          '}',
        ].filter((line) => line !== null).join('\n');
      }).join('\n\n'),
    },
    nginx: {
      name: 'nginx (auth_request)',
      hint: 'Inside the http block; it needs the keygate upstream and the @keygate_signin location of the README\'s nginx configuration.',
      snippet: (app, list) => [...new Set(list.map((d) => d.host))].map((host) => [
        'server {',
        '    listen 80;',
        `    server_name ${host};`,
        ...list.filter((d) => d.host === host).map((d) => [
          '',
          `    location ${d.path === '/' ? '/' : `^~ ${below(d.path)}`} {`,
          '        auth_request /.keygate;',
          '        auth_request_set $keygate_user_id $upstream_http_x_keygate_user_id;',
          '        auth_request_set $keygate_role $upstream_http_x_keygate_role;',
          '        auth_request_set $keygate_location $upstream_http_location;',
          '        error_page 401 = @keygate_signin;',
          '        proxy_set_header X-Keygate-User-Id $keygate_user_id;',
          '        proxy_set_header X-Keygate-Role $keygate_role;',
          '        proxy_set_header X-Api-Key "";',
          '        proxy_set_header Host $http_host;',
          `        proxy_pass ${UPSTREAM}; # your service`,
          '    }',
        ]).flat(),
        '',
        '    location = /.keygate {',
        '        internal;',
        `        proxy_pass ${keygateUrl()}/api/authz/auth-request;`,
        '        proxy_pass_request_body off;',
        '        proxy_set_header Content-Length "";',
        '        proxy_set_header X-Original-URL $scheme://$http_host$request_uri;',
        '        proxy_set_header X-Original-Method $request_method;',
        '    }',
        '}',
      ].join('\n')).join('\n\n'),
    },
  };

  $('#projects-list').addEventListener('change', (event) => {
    const select = event.target.closest('select.snippet-proxy');
    if (!select || !Object.hasOwn(PROXIES, select.value)) return;
    domains.proxy = select.value;
    renderDomains(select.dataset.app);
    focus(`#snippet-proxy-${CSS.escape(select.dataset.app)}`);
  });

  const hostField = (value) => ({
    name: 'host', label: 'Host', value, required: true, placeholder: 'app.example.com',
    hint: 'Without scheme or port; stored lower case.',
  });
  const pathField = (value) => ({
    name: 'path', label: 'Path prefix', value, placeholder: '/',
    hint: 'It holds itself and what is below it: /api holds /api/v1, not /apix.',
  });

  /** Finds a loaded domain and its application by the domain's id. */
  function findDomain(domainId) {
    for (const [appId, list] of domains.loaded) {
      if (!Array.isArray(list)) continue;
      const d = list.find((x) => x.domainId === domainId);
      if (d) return { appId, d };
    }
    return null;
  }

  async function domainAction(action, id, btn) {
    if (action === 'copy-snippet') {
      const area = $(`#snippet-${CSS.escape(id)}`);
      await copyText(area.value, area, $(`#snippet-copied-${CSS.escape(id)}`), 'configuration');
      return;
    }
    const found = action === 'add-domain' ? { appId: id, d: null } : findDomain(id);
    if (!found) return;
    const { appId, d } = found;
    try {
      const done = await busy(btn, async () => {
        if (action === 'add-domain') {
          const r = await editDialog({
            title: 'A new domain', ok: 'Add domain', fields: [hostField(''), pathField('')],
            submit: (v) => post('/api/domain.create', { applicationId: appId, host: v.host, path: optional(v.path) }),
          });
          return r && `${r.host}${r.path} now leads to this application, behind keygate.`;
        }
        if (action === 'edit-domain') {
          const r = await editDialog({
            title: `Edit ${d.host}${d.path}`, ok: 'Save', fields: [hostField(d.host), pathField(d.path)],
            submit: (v) => post('/api/domain.update', { domainId: d.domainId, host: v.host, path: v.path || '/' }),
          });
          return r && `The domain is now ${r.host}${r.path}.`;
        }
        const yes = await confirmDialog({
          title: `Delete ${d.host}${d.path}?`,
          text: 'Forward auth refuses its requests from the next one on.',
          ok: 'Delete domain',
        });
        if (!yes) return null;
        await post('/api/domain.delete', { domainId: d.domainId });
        return `${d.host}${d.path} is deleted.`;
      });
      if (!done) return;
      await loadDomains(appId);
      toast(done);
    } catch (err) {
      toast(err.message, 'error');
    }
  }

  // Activity: the organization's audit log (owner or admin) or the caller's own events,
  // newest first, filtered, a page at a time.

  const ACTIVITY_PATHS = { organization: '/api/audit.all', account: '/api/audit.account' };
  const ACTIVITY_FILTERS = ['action', 'actorId', 'resourceType', 'resourceId'];
  const ACTOR_KINDS = { user: 'user', api_key: 'API key', shell: 'shell', anonymous: 'anonymous' };
  const OUTCOME_BADGES = { success: 'badge ok', failure: 'badge off', refused: 'badge off' };

  /**
   * The view shown (`null` until the page picks one), the filter of the rows shown, the
   * cursor of the next page, and the count of requests made (a late answer is dropped).
   */
  const activity = { view: null, filter: {}, cursor: null, seq: 0 };

  /** A date input's day, in the browser's time zone, as RFC 3339; `next` for its end. */
  function dayStart(value, next = false) {
    const [y, m, d] = value.split('-').map(Number);
    return new Date(y, m - 1, d + (next ? 1 : 0)).toISOString();
  }

  /** The form's filter as query parameters; empty fields are left out. */
  function activityFilter() {
    const form = $('#activity-form');
    const filter = {};
    for (const name of ACTIVITY_FILTERS) {
      const value = form.elements.namedItem(name).value.trim();
      if (value) filter[name] = value;
    }
    const from = form.elements.namedItem('from').value;
    const to = form.elements.namedItem('to').value;
    if (from) filter.from = dayStart(from);
    // `to` is exclusive: the end of the day asked for.
    if (to) filter.to = dayStart(to, true);
    return filter;
  }

  /** "Chrome on Linux", or a long unknown agent cut short. */
  function shortAgent(ua) {
    const text = describeAgent(ua);
    return text.length > 40 ? `${text.slice(0, 39)}…` : text;
  }

  /** What `details` adds, as short text (the last time of a counted refusal is in Count). */
  function detailsText(details) {
    if (!details || typeof details !== 'object') return '';
    const text = Object.entries(details)
      .filter(([name]) => name !== 'lastAt')
      .map(([name, value]) => `${name}: ${typeof value === 'string' ? value : JSON.stringify(value)}`)
      .join(' · ');
    return text.length > 120 ? `${text.slice(0, 119)}…` : text;
  }

  function activityRow(e) {
    const a = e.actor || {};
    const details = detailsText(e.details);
    const lastAt = e.details && typeof e.details.lastAt === 'string' ? e.details.lastAt : null;
    return h('tr', null,
      h('td', { class: 'nowrap' }, when(e.at)),
      h('td', { class: 'name', title: a.id || null }, a.label || ACTOR_KINDS[a.type] || a.type,
        h('span', { class: 'sub' }, ACTOR_KINDS[a.type] || a.type)),
      h('td', null, h('code', null, e.action), details ? h('span', { class: 'sub details' }, details) : null),
      h('td', { class: 'name' }, e.resourceType || '—', e.resourceId ? h('span', { class: 'sub mono' }, e.resourceId) : null),
      h('td', null, h('span', { class: OUTCOME_BADGES[e.outcome] || 'badge' }, e.outcome)),
      h('td', {
        class: 'num nowrap',
        title: e.count > 1 ? `${e.count} times${lastAt ? `, the last at ${dateFormat.format(new Date(lastAt))}` : ''}` : null,
      }, e.count > 1 ? `×${e.count.toLocaleString()}` : ''),
      h('td', { class: 'nowrap' }, e.clientAddress || '—'),
      h('td', { class: 'agent', title: e.userAgent || null }, e.userAgent ? shortAgent(e.userAgent) : '—'),
      h('td', { class: 'nowrap' }, e.requestId ? h('code', null, e.requestId) : '—'));
  }

  function showActivityView(view) {
    activity.view = view;
    for (const b of document.querySelectorAll('#activity [data-view]')) {
      b.setAttribute('aria-pressed', String(b.dataset.view === view));
    }
    $('#activity-caption').textContent = view === 'organization'
      ? `Events of ${state.active ? state.active.name : 'the active organization'}`
      : 'Events of your account';
  }

  /**
   * Loads the first page of the form's filter (`more` false), or the next page of the rows
   * shown. On an error the rows and the form stay as they are.
   */
  async function loadActivity(more = false) {
    const error = $('#activity-form .error');
    const tbody = $('#activity-table tbody');
    const button = $('#activity-more');
    const seq = ++activity.seq;
    const filter = more ? activity.filter : activityFilter();
    const params = { ...filter };
    if (more) params.cursor = activity.cursor;
    const view = activity.view;
    $('#activity-status').textContent = 'Loading…';
    try {
      const page = await (more ? busy(button, () => get(withQuery(ACTIVITY_PATHS[view], params)))
        : get(withQuery(ACTIVITY_PATHS[view], params)));
      if (seq !== activity.seq || !signedIn) return;
      clearError(error);
      activity.filter = filter;
      activity.cursor = page.nextCursor || null;
      const rows = page.events.map(activityRow);
      if (more) tbody.append(...rows);
      else tbody.replaceChildren(...rows);
      const shown = tbody.rows.length;
      $('#activity-empty').hidden = shown !== 0;
      $('#activity-table').hidden = shown === 0;
      button.hidden = !activity.cursor;
      $('#activity-status').textContent = shown
        ? `${shown.toLocaleString()} event${shown === 1 ? '' : 's'} shown${activity.cursor ? '; there are more.' : '.'}`
        : '';
    } catch (err) {
      if (seq !== activity.seq) return;
      $('#activity-status').textContent = '';
      showError(error, err);
      if (!more) {
        // The rows of another view or filter would read as this one's answer.
        tbody.replaceChildren();
        $('#activity-table').hidden = true;
        $('#activity-empty').hidden = true;
        button.hidden = true;
      }
      if (view === 'organization' && err.reason === 'permission_denied') {
        error.append(' ', h('button', { type: 'button', class: 'link', 'data-view-account': true },
          'Show the events of my account instead'));
      }
    }
  }

  /** The first page of the view `refresh` opens: the organization's for an owner or admin. */
  function reloadActivity() {
    if (!activity.view) showActivityView(state.active && MANAGERS.has(state.active.role) ? 'organization' : 'account');
    else showActivityView(activity.view);
    return loadActivity();
  }

  $('#activity').addEventListener('click', (event) => {
    const toggle = event.target.closest('[data-view]');
    const offer = event.target.closest('[data-view-account]');
    if (!toggle && !offer) return;
    const view = offer ? 'account' : toggle.dataset.view;
    showActivityView(view);
    loadActivity();
    if (offer) focus('#activity [data-view="account"]');
  });

  $('#activity-form').addEventListener('submit', (event) => {
    event.preventDefault();
    loadActivity();
  });

  $('#activity-clear').addEventListener('click', () => {
    $('#activity-form').reset();
    loadActivity();
    focus('#activity-action');
  });

  $('#activity-more').addEventListener('click', (event) => {
    if (isBusy(event.currentTarget) || !activity.cursor) return;
    loadActivity(true);
  });

  // ---- Start -------------------------------------------------------------------------

  /** Opens the page: a reset link's form, the signed-in view, or sign-in. */
  async function start() {
    if (resetToken()) {
      showReset();
      return;
    }
    const invited = inviteToken();
    if (invited) window.history.replaceState(null, '', window.location.pathname + window.location.search);
    try {
      const current = await get('/api/auth/get-session');
      if (current && current.user) {
        pendingInvite = invited;
        await enter(current.user);
        await offerInvitation();
      } else if (invited) showInvitedSignUp(invited);
      else showAuth();
    } catch (err) {
      showAuth();
      showError($('#sign-in-form .error'), err);
    }
  }

  start();
})();
