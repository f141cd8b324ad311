// The Train view: a settings form made from one of the shipped configs
// (GET /api/settings), Start (POST /api/train), the controls (POST /api/train/pause |
// step | resume | stop) and live charts from the event stream GET /api/train/events.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const { api, ready } = window.nav;
  const { LineChart, confusion, fmt } = window.charts;

  // Keys with a fixed set of words: a select instead of a text box.
  const CHOICES = {
    mode: ['manual', 'autodiff'],
    backend: ['flex', 'ndarray', 'wgpu'],
    'model.init': ['he', 'uniform'],
    'train.optimizer': ['sgd', 'momentum', 'nesterov', 'adam', 'adamw'],
    'train.schedule.kind': ['constant', 'step', 'cosine', 'linear'],
  };
  // Keys that take a number or a word (batch_size = 64 or "full").
  const NUMBER_OR_WORD = new Set(['train.batch_size']);
  // Keys offered even when the config lacks them (an empty box leaves them out).
  const OPTIONAL = {
    data: ['limit'],
    train: ['weight_decay', 'target_accuracy', 'patience'],
  };
  // Tables offered even when the config lacks them (left out while every box is empty):
  // the learning-rate schedule and the augmentation (README, Configs).
  const OPTIONAL_TABLES = {
    train: {
      schedule: ['kind', 'warmup_epochs', 'every', 'factor'],
      augment: ['shift', 'rotation', 'scale', 'shear', 'elastic_alpha', 'elastic_sigma'],
    },
  };
  const HINTS = {
    'data.limit': 'empty = all training images',
    'train.batch_size': 'a number, or "full"',
    'model.hidden': 'hidden units',
    name: 'the run goes to artifacts/<name>',
  };

  // The order of the keys in the shipped TOML files (the server's JSON sorts them);
  // other keys follow in the order they come.
  const ORDER = ['name', 'seed', 'mode', 'backend', 'model', 'train', 'data', 'hidden', 'init',
    'epochs', 'batch_size', 'learning_rate', 'optimizer'];
  const rank = (key) => (ORDER.includes(key) ? ORDER.indexOf(key) : ORDER.length);

  let configs = [];          // GET /api/settings' configs
  let allowed = true;        // GET /api/server's training_allowed
  let status = { state: 'idle' };
  // State events received from the stream. A control's reply is a snapshot taken when
  // the server got the request; the stream may already have said what came after (the
  // loop paused, the batch ran), so a reply is shown only if no state event came in
  // meanwhile.
  let streamStates = 0;

  /** `request`'s STATUS shown unless the stream has said something newer meanwhile. */
  async function applyReply(request) {
    const seen = streamStates;
    const reply = await request;
    if (streamStates === seen) applyStatus(reply);
  }

  // ---- the form -------------------------------------------------------------------

  /** One field for `value` at `path` (a list of keys). */
  function field(path, value, kind) {
    const key = path.join('.');
    const label = document.createElement('label');
    label.className = 'field';
    label.append(path[path.length - 1]);
    let input;
    if (CHOICES[key]) {
      input = document.createElement('select');
      const words = CHOICES[key].includes(value) ? CHOICES[key] : [value, ...CHOICES[key]];
      words.forEach((w) => input.add(new Option(w, w)));
      input.value = value;
    } else if (kind === 'boolean') {
      input = document.createElement('input');
      input.type = 'checkbox';
      input.checked = value;
    } else {
      input = document.createElement('input');
      input.type = 'text';
      input.value = value === null || value === undefined ? '' : String(value);
      if (kind === 'number') input.inputMode = 'decimal';
      if (HINTS[key]) input.placeholder = HINTS[key];
    }
    input.dataset.path = key;
    input.dataset.kind = kind;
    input.dataset.original = kind === 'boolean' ? String(value) : input.value;
    input.id = `train-field-${key.replace(/\./g, '-')}`;
    label.appendChild(input);
    if (HINTS[key]) label.title = HINTS[key];
    return label;
  }

  /** Fields for every key of `object`, sub-objects as nested fieldsets. */
  function fields(object, path = []) {
    const box = document.createElement(path.length ? 'fieldset' : 'div');
    box.className = 'fields';
    if (path.length) {
      const legend = document.createElement('legend');
      legend.textContent = `[${path.join('.')}]`;
      box.appendChild(legend);
    }
    const entries = Object.entries(object);
    entries.sort(([a], [b]) => rank(a) - rank(b));   // stable: unranked keys keep their order
    entries.forEach(([key, value]) => {
      if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
        box.appendChild(fields(value, [...path, key]));
      } else {
        const kind = value === null ? 'null' : Array.isArray(value) ? 'json' : typeof value;
        box.appendChild(field([...path, key], kind === 'json' ? JSON.stringify(value) : value, kind));
      }
    });
    const extra = OPTIONAL[path.join('.')] || [];
    extra.filter((k) => !(k in object)).forEach((k) => box.appendChild(field([...path, k], '', 'absent')));
    const tables = OPTIONAL_TABLES[path.join('.')] || {};
    Object.entries(tables).filter(([name]) => !(name in object)).forEach(([name, keys]) => {
      const table = fields({}, [...path, name]);
      keys.forEach((k) => table.appendChild(field([...path, name, k], '', 'absent')));
      box.appendChild(table);
    });
    return box;
  }

  function showConfig() {
    const chosen = configs.find((c) => c.name === $('train-config').value);
    const box = $('train-fields');
    box.textContent = '';
    if (chosen) box.appendChild(fields(chosen.config));
  }

  const isNumber = (s) => s.trim() !== '' && Number.isFinite(Number(s));

  /** The value typed in `input`, typed as its key wants it (numbers stay numbers). */
  function parse(input) {
    const s = input.value;
    switch (input.dataset.kind) {
      case 'boolean': return input.checked;
      case 'json': try { return JSON.parse(s); } catch (e) { return s; }
      case 'string': return NUMBER_OR_WORD.has(input.dataset.path) && isNumber(s) ? Number(s) : s;
      case 'number': return isNumber(s) ? Number(s) : s.trim() === '' ? null : s;
      default: return isNumber(s) ? Number(s) : s.trim() === '' ? null : s;   // null, absent
    }
  }

  /** The chosen config with only the fields the user changed replaced. */
  function editedConfig() {
    const chosen = configs.find((c) => c.name === $('train-config').value);
    const config = JSON.parse(JSON.stringify(chosen.config));
    $('train-fields').querySelectorAll('[data-path]').forEach((input) => {
      const now = input.dataset.kind === 'boolean' ? String(input.checked) : input.value;
      if (now === input.dataset.original) return;
      const path = input.dataset.path.split('.');
      const last = path.pop();
      // A table the config lacked is made when one of its boxes is filled in.
      const parent = path.reduce((o, k) => (o[k] ??= {}), config);
      const value = parse(input);
      if (input.dataset.kind === 'absent' && value === null) delete parent[last];
      else parent[last] = value;
    });
    return config;
  }

  async function loadSettings() {
    const server = await ready;
    allowed = server.training_allowed !== false;
    $('train-allowed').textContent = allowed ? ''
      : 'Training is not allowed on this server (start it with --allow-training, and use it from this machine).';
    try {
      const settings = await api('/api/settings');
      configs = settings.configs || [];
      const select = $('train-config');
      select.textContent = '';
      configs.forEach((c) => select.add(new Option(`${c.name} (${c.file})`, c.name)));
      select.value = settings.default || (configs[0] && configs[0].name);
      showConfig();
    } catch (error) {
      $('train-message').textContent = `Cannot read the settings: ${error.message}`;
    }
    applyStatus(status);
  }

  $('train-config').addEventListener('change', showConfig);

  $('train-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    $('train-message').textContent = '';
    try {
      await applyReply(api('/api/train', { method: 'POST', body: { config: editedConfig() } }));
    } catch (error) {
      $('train-message').textContent = error.status ? `${error.status}: ${error.message}` : error.message;
    }
  });

  // ---- the controls and the status ------------------------------------------------

  async function control(what) {
    $('train-message').textContent = '';
    try {
      await applyReply(api(`/api/train/${what}`, { method: 'POST' }));
    } catch (error) {
      $('train-message').textContent = error.message;
    }
  }
  ['pause', 'step', 'resume', 'stop'].forEach((what) => {
    $(`train-${what}`).addEventListener('click', () => control(what));
  });

  /** The run's directory name, as GET /api/runs names it. */
  const runName = (s) => (s.dir ? s.dir.split('/').filter(Boolean).pop() : s.run);

  function applyStatus(s) {
    status = s;
    const st = s.state;
    const badge = $('train-state');
    badge.textContent = st;
    badge.dataset.state = st;
    if (s.dir || s.run) resetFor(s.dir || s.run);
    $('train-run').textContent = s.run ? `run ${s.run}${s.dir ? ` → ${s.dir}` : ''}` : 'no run yet';
    const active = ['running', 'paused', 'stopping'].includes(st);
    $('train-start').disabled = !allowed || active || !configs.length;
    $('train-pause').disabled = st !== 'running';
    $('train-step').disabled = st !== 'paused';
    $('train-resume').disabled = st !== 'paused';
    $('train-stop').disabled = !(st === 'running' || st === 'paused');
    $('train-draw').hidden = !((st === 'finished' || st === 'stopped') && s.run);
    if (s.epochs) $('train-epoch').textContent = `${s.epoch} of ${s.epochs}`;
    if (typeof s.step === 'number') showStep(s.step, s.total_steps ? s.step / s.total_steps : null);
    if (s.total_steps) $('train-total-steps').textContent = `of ${s.total_steps}`;
    if (st === 'failed' && s.message) $('train-message').textContent = `Training failed: ${s.message}`;
    else if (s.message) $('train-draw-note').textContent = s.message;
  }

  function showStep(step, progress) {
    const count = $('train-step-count');
    count.textContent = String(step);
    count.dataset.step = String(step);
    if (progress !== null && progress !== undefined) {
      $('train-progress').style.width = `${(100 * Math.min(1, progress)).toFixed(1)}%`;
    }
  }

  $('train-draw').addEventListener('click', async () => {
    try {
      const info = await api(`/api/runs/${encodeURIComponent(runName(status))}/open`, { method: 'POST' });
      await window.drawView.reload(info);
      window.nav.show('draw');
    } catch (error) {
      $('train-message').textContent = `Cannot open the run: ${error.message}`;
    }
  });

  // ---- the charts -----------------------------------------------------------------

  const chart = (id, options) => new LineChart($(id), { xLabel: 'step', ...options });
  const charts = {
    loss: chart('chart-loss', { yMin: 0 }),
    accuracy: chart('chart-accuracy', { yMax: 1 }),
    lr: chart('chart-lr', { yMin: 0 }),
    grads: chart('chart-grads', { log: true }),
    ratios: chart('chart-ratios', { log: true }),
    dead: chart('chart-dead', { yMin: 0, yMax: 1 }),
  };
  let shownRun = null;                 // the run the charts are for
  let epochsSeen = new Set();          // epoch events already drawn (they are resent on reconnect)

  /** A new run: empty charts. */
  function resetFor(run) {
    if (run === shownRun) return;
    if (shownRun !== null) Object.values(charts).forEach((c) => c.clear());
    shownRun = run;
    epochsSeen = new Set();
    $('train-confusion').textContent = '';
    $('train-confusion-epoch').textContent = '';
  }

  const THIN = { width: 1 };
  const DOTS = { dots: true, width: 1.5 };
  const PARAMS = ['W1', 'b1', 'W2', 'b2'];

  function onStep(d) {
    showStep(d.step, d.progress);
    $('train-speed').textContent = d.images_per_s ? Math.round(d.images_per_s).toLocaleString('en') : '–';
    $('train-lr').textContent = fmt(d.lr);
    $('train-loss').textContent = fmt(d.loss);
    $('train-accuracy').textContent = `${(100 * d.accuracy).toFixed(2)}%`;
    if (d.epoch !== undefined && status.epochs) $('train-epoch').textContent = `${d.epoch} of ${status.epochs}`;
    // Resent steps (after a reconnect) are not drawn twice.
    if (d.step <= charts.loss.lastX('train (running)')) return;
    charts.loss.add('train (running)', d.step, d.loss, THIN);
    charts.accuracy.add('train (running)', d.step, d.accuracy, THIN);
    charts.lr.add('α', d.step, d.lr);
    PARAMS.forEach((p) => {
      if (d.grad_norms) charts.grads.add(`‖d${p}‖`, d.step, d.grad_norms[p]);
      if (d.update_ratio) charts.ratios.add(p, d.step, d.update_ratio[p]);
    });
    if (d.dead_relu !== undefined) charts.dead.add('dead fraction', d.step, d.dead_relu);
  }

  function onEpoch(d) {
    if (epochsSeen.has(d.epoch)) return;
    epochsSeen.add(d.epoch);
    ['train', 'valid', 'test'].forEach((split) => {
      if (!d[split]) return;
      charts.loss.add(`${split} (epoch)`, d.step, d[split].loss, DOTS);
      charts.accuracy.add(`${split} (epoch)`, d.step, d[split].accuracy, DOTS);
    });
    if (d.confusion) {
      confusion($('train-confusion'), d.confusion);
      $('train-confusion').dataset.epoch = String(d.epoch);
      $('train-confusion-epoch').textContent = `After epoch ${d.epoch}.`;
    }
  }

  function onWeights(d) {
    $('train-weights').src = d.png;
    $('train-weights').hidden = false;
    $('train-weights-none').hidden = true;
    $('train-weights').dataset.step = String(d.step);
    $('train-weights-step').textContent = `Shown: ${d.hidden} units at step ${d.step}.`;
  }

  // ---- the event stream (EventSource reconnects by itself) ------------------------

  function listen() {
    const source = new EventSource('/api/train/events');
    const on = (name, f) => source.addEventListener(name, (event) => {
      try {
        f(JSON.parse(event.data));
      } catch (error) {
        $('train-message').textContent = `Bad ${name} event: ${error.message}`;
      }
    });
    on('state', (s) => { streamStates += 1; applyStatus(s); });
    on('step', onStep);
    on('epoch', onEpoch);
    on('weights', onWeights);
  }

  loadSettings();
  applyReply(api('/api/train')).catch(() => {});
  listen();
  // Charts drawn while hidden have no size: draw them again when the view shows.
  window.nav.onShow('train', () => Object.values(charts).forEach((c) => c.draw()));
})();
