// The tabs: one view shown at a time, chosen by the URL hash (#train, #equations,
// #draw, #runs) or else by GET /api/server's start_view. body[data-view] names the
// view shown. Views register a function to run when they are shown (nav.onShow).
// Exposed as `window.nav`; also the JSON helper the views share (nav.api).
'use strict';

(() => {
  const VIEWS = ['train', 'equations', 'draw', 'runs'];
  const listeners = new Map();   // view → [functions called when it is shown]
  let current = null;

  /** fetch → JSON, throwing the server's {"error"} message on a 4xx/5xx. */
  async function api(path, options = {}) {
    const init = { ...options };
    if (options.body !== undefined && typeof options.body !== 'string') {
      init.body = JSON.stringify(options.body);
      init.headers = { 'Content-Type': 'application/json', ...(options.headers || {}) };
    }
    const response = await fetch(path, init);
    const text = await response.text();
    let body;
    try {
      body = text ? JSON.parse(text) : {};
    } catch (e) {
      throw Object.assign(new Error(`the server answered ${response.status} without JSON`),
        { status: response.status });
    }
    if (!response.ok) {
      throw Object.assign(new Error(body.error || `the server answered ${response.status}`),
        { status: response.status, body });
    }
    // The raw text too, for callers that need a number exactly as the server wrote it.
    Object.defineProperty(body, '__text', { value: text, enumerable: false });
    return body;
  }

  function show(view) {
    if (!VIEWS.includes(view)) return;
    VIEWS.forEach((v) => {
      document.getElementById(`view-${v}`).hidden = v !== view;
      const tab = document.getElementById(`tab-${v}`);
      tab.classList.toggle('active', v === view);
      tab.setAttribute('aria-selected', String(v === view));
    });
    document.body.dataset.view = view;
    // A heat map's tooltip left showing would float over the next view.
    document.querySelectorAll('.tooltip').forEach((tip) => { tip.hidden = true; });
    if (location.hash !== `#${view}`) history.replaceState(null, '', `#${view}`);
    const changed = current !== view;
    current = view;
    if (changed) (listeners.get(view) || []).forEach((f) => f());
  }

  function onShow(view, f) {
    if (!listeners.has(view)) listeners.set(view, []);
    listeners.get(view).push(f);
    if (current === view) f();
  }

  function fromHash() {
    const view = location.hash.replace(/^#/, '');
    return VIEWS.includes(view) ? view : null;
  }

  window.addEventListener('hashchange', () => { if (fromHash()) show(fromHash()); });

  // What the server offers; the views wait on this before they start (nav.ready).
  // A server without /api/server (an older one) is taken as a Draw-only server.
  const ready = api('/api/server')
    .catch(() => ({ views: ['draw'], start_view: 'draw', training_allowed: false, watch: null, model: null }))
    .then((server) => {
      const views = Array.isArray(server.views) ? server.views : VIEWS;
      VIEWS.forEach((v) => { document.getElementById(`tab-${v}`).hidden = !views.includes(v); });
      show(fromHash() || server.start_view || 'draw');
      return server;
    });

  // Errors nobody caught are written on the page, where a person or a test sees them.
  window.addEventListener('error', (event) => {
    document.getElementById('page-error').textContent = `Page error: ${event.message}`;
  });
  window.addEventListener('unhandledrejection', (event) => {
    const reason = event.reason && event.reason.message ? event.reason.message : String(event.reason);
    document.getElementById('page-error').textContent = `Page error: ${reason}`;
  });

  window.nav = { show, onShow, api, ready, current: () => current };
})();
