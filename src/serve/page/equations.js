// The Equations view: one gradient-descent step worked out on m images, every matrix
// of the seed's equations as a heat map. POST /api/equations computes it,
// POST /api/equations/step applies W −= α·dW, and a click on a cell asks
// GET /api/equations/cell how that number is made.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const { api } = window.nav;
  const { decode, heatmap, tiles, interactive, fmt } = window.charts;

  // Each line of the seed's equations and the matrices it shows, left to right.
  // how: 'heat' (one cell per entry), 'rows' (a 28×28 tile per row: W1, dW1),
  // 'columns' (a 28×28 digit per column: X). kind: the colour map.
  const LINES = [
    {
      eq: 'Z1 = W1·X + b1',
      text: 'The forward pass starts: each hidden unit weighs the 784 pixels of each image and adds its bias.',
      parts: [['W1', 'rows'], '·', ['X', 'columns', 'ink'], '+', ['b1'], '=', ['Z1']],
    },
    {
      eq: 'A1 = ReLU(Z1)',
      text: 'ReLU keeps the positive entries of Z1 and sets the negative ones to 0 (white).',
      parts: [['A1']],
    },
    {
      eq: 'Z2 = W2·A1 + b2',
      text: 'Each of the 10 output units weighs the hidden activations: one score per digit and image.',
      parts: [['W2'], '·', 'A1', '+', ['b2'], '=', ['Z2']],
    },
    {
      eq: 'A2 = softmax(Z2)',
      text: 'Softmax turns each column of scores into probabilities that sum to 1. Y is the one-hot truth: 1 at each image\'s label.',
      parts: [['A2', 'heat', 'sequential'], 'vs', ['Y', 'heat', 'sequential']],
      labels: true,
    },
    {
      eq: 'dZ2 = A2 − Y',
      text: 'The backward pass starts: the cross-entropy\'s gradient for the scores is simply predicted minus true (red: too high, blue: too low).',
      parts: [['dZ2']],
    },
    {
      eq: 'dW2 = (1/m)·dZ2·A1ᵀ',
      text: 'Each output weight\'s gradient: its unit\'s error times the hidden activation feeding it, averaged over the m images.',
      parts: [['dW2'], 'autodiff', ['autodiff.dW2']],
    },
    {
      eq: 'db2 = (1/m)·Σ dZ2',
      text: 'The output biases\' gradient: each row of dZ2 averaged over the images.',
      parts: [['db2'], 'autodiff', ['autodiff.db2']],
    },
    {
      eq: 'dZ1 = W2ᵀ·dZ2 ⊙ ReLU\'(Z1)',
      text: 'The error sent back to the hidden units through W2, let through only where the unit was active (Z1 > 0).',
      parts: [['dZ1']],
    },
    {
      eq: 'dW1 = (1/m)·dZ1·Xᵀ',
      text: 'Each hidden unit\'s weight gradient as a 28×28 picture: the images it got wrong, weighted by its error.',
      parts: [['dW1', 'rows'], 'autodiff', ['autodiff.dW1', 'rows']],
    },
    {
      eq: 'db1 = (1/m)·Σ dZ1',
      text: 'The hidden biases\' gradient: each row of dZ1 averaged over the images.',
      parts: [['db1'], 'autodiff', ['autodiff.db1']],
    },
    {
      eq: 'W −= α·dW,   b −= α·db',
      text: 'The update: every weight and bias moves a step α against its gradient. Press “Take the step” to apply it and recompute everything.',
      parts: [],
      step: true,
    },
  ];

  const NOTES = {
    X: 'one 28×28 digit per column (image)',
    W1: 'one 28×28 tile per hidden unit (row)',
    dW1: 'one 28×28 tile per hidden unit (row)',
    'autodiff.dW1': 'Burn autodiff\'s dW1',
    'autodiff.dW2': 'Burn autodiff\'s dW2',
    'autodiff.db1': 'Burn autodiff\'s db1',
    'autodiff.db2': 'Burn autodiff\'s db2',
  };

  let worked = null;
  let again = null;          // explains the clicked cell again, for a new worked step

  // ---- asking the server ----------------------------------------------------------

  const num = (id) => Number($(id).value);

  function request() {
    const body = {
      network: $('eq-network').value,
      source: $('eq-source').value,
      start: num('eq-start-index'),
      m: num('eq-m'),
      alpha: num('eq-alpha'),
    };
    if (body.network === 'fresh') {
      Object.assign(body, { hidden: num('eq-hidden'), init: $('eq-init').value, seed: num('eq-seed') });
    }
    return body;
  }

  async function compute(path, body) {
    $('eq-message').textContent = '';
    document.body.dataset.eqBusy = '1';
    try {
      show(await api(path, { method: 'POST', body }));
    } catch (error) {
      $('eq-message').textContent = error.message;
    } finally {
      document.body.dataset.eqBusy = '0';
    }
  }

  $('eq-form').addEventListener('submit', (event) => {
    event.preventDefault();
    compute('/api/equations', request());
  });
  $('eq-step').addEventListener('click', () => compute('/api/equations/step', {}));
  const freshOnly = () => document.querySelectorAll('.fresh-only').forEach((e) => {
    e.hidden = $('eq-network').value !== 'fresh';
  });
  $('eq-network').addEventListener('change', freshOnly);
  freshOnly();

  // ---- showing a worked step ------------------------------------------------------

  /** The decoded matrix called `name` ('autodiff.dW1' for autodiff's). */
  function matrix(name) {
    const [group, key] = name.startsWith('autodiff.') ? ['autodiff', name.slice(9)] : ['matrices', name];
    const m = worked[group] && worked[group][key];
    return m ? decode(m) : null;
  }

  function show(w) {
    worked = w;
    $('eq-step').disabled = false;
    const count = $('eq-step-count');
    count.textContent = String(w.step);
    count.dataset.step = String(w.step);
    $('eq-loss').textContent = w.stepped
      ? `${fmt(w.stepped.loss_before)} → ${fmt(w.stepped.loss_after)}`
      : fmt(w.loss);
    $('eq-loss').dataset.loss = String(w.loss);
    const box = $('eq-lines');
    box.textContent = '';
    LINES.forEach((line) => box.appendChild(lineCard(line)));
    box.insertBefore(autodiffCard(), box.lastChild);
    // The clicked cell's explanation, for the matrices now shown.
    if (again) again();
  }

  function lineCard(line) {
    const card = document.createElement('section');
    card.className = 'card eq-line';
    const title = document.createElement('h3');
    title.className = 'eq';
    title.textContent = line.eq;
    const text = document.createElement('p');
    text.className = 'muted small';
    text.textContent = line.text;
    const row = document.createElement('div');
    row.className = 'terms';
    line.parts.forEach((part) => row.appendChild(Array.isArray(part) ? figure(...part) : operator(part)));
    card.append(title, text, row);
    if (line.labels) card.appendChild(labelsTable());
    if (line.step) card.appendChild(stepSummary());
    return card;
  }

  function operator(text) {
    const span = document.createElement('span');
    span.className = 'op';
    if (text === 'autodiff' || text === 'vs') span.classList.add('word');
    span.textContent = text === 'autodiff' ? 'beside Burn autodiff:' : text;
    return span;
  }

  /** A heat map of matrix `name` with its name, shape and a note. */
  function figure(name, how = 'heat', kind = 'diverging') {
    const fig = document.createElement('figure');
    fig.className = 'mat';
    const canvas = document.createElement('canvas');
    canvas.dataset.matrix = name;
    const m = matrix(name);
    const caption = document.createElement('figcaption');
    if (!m) {
      caption.textContent = `${name}: not sent`;
      fig.append(caption);
      return fig;
    }
    if (how === 'heat') heatmap(canvas, m, { kind });
    else tiles(canvas, m, { kind, byColumn: how === 'columns', maxWidth: how === 'columns' ? 480 : 400 });
    const auto = name.startsWith('autodiff.');
    interactive(canvas, name, auto ? (c) => showLocal(name, c) : (c) => explain(name, c));
    caption.innerHTML = `<b></b> <span class="shape"></span><br><span class="muted"></span>`;
    caption.children[0].textContent = auto ? name.slice(9) : name;
    caption.children[1].textContent = `${m.rows}×${m.cols}`;
    caption.children[3].textContent = NOTES[name] || '';
    fig.dataset.rows = String(m.rows);
    fig.dataset.cols = String(m.cols);
    fig.append(canvas, caption);
    return fig;
  }

  /** Each image's label and the network's prediction, wrong ones marked. */
  function labelsTable() {
    const table = document.createElement('table');
    table.className = 'labels';
    table.id = 'eq-labels';
    const rows = [['image', worked.indices], ['label', worked.labels], ['prediction', worked.predictions]];
    rows.forEach(([name, values]) => {
      const tr = table.insertRow();
      const th = document.createElement('th');
      th.textContent = name;
      tr.appendChild(th);
      (values || []).forEach((v, j) => {
        const td = tr.insertCell();
        td.textContent = String(v);
        if (name === 'prediction') {
          td.classList.add(v === worked.labels[j] ? 'right' : 'wrong');
        }
      });
    });
    const note = document.createElement('p');
    note.className = 'muted small';
    note.textContent = 'Column j of A2 and Y is image j. Green: predicted right; red: wrong.';
    const box = document.createElement('div');
    box.append(table, note);
    return box;
  }

  function autodiffCard() {
    const card = document.createElement('section');
    card.className = 'card eq-line';
    card.innerHTML = '<h3>Hand-derived vs Burn autodiff</h3><p class="muted small">The largest '
      + '|difference| between each hand-derived gradient above and the one Burn\'s automatic '
      + 'differentiation computes for the same loss: float rounding only (about 1e-7) means the '
      + 'derivation is right.</p>';
    const list = document.createElement('dl');
    list.id = 'eq-autodiff-diff';
    list.className = 'facts';
    const a = worked.autodiff || {};
    const diffs = a.max_abs_diff || {};
    ['dW1', 'db1', 'dW2', 'db2'].forEach((p) => {
      const dt = document.createElement('dt');
      dt.textContent = `max |${p} − autodiff ${p}|`;
      const dd = document.createElement('dd');
      dd.textContent = diffs[p] === undefined ? '–' : fmt(diffs[p]);
      dd.dataset.param = p;
      dd.dataset.value = String(diffs[p]);
      list.append(dt, dd);
    });
    list.dataset.largest = String(a.largest);
    card.appendChild(list);
    return card;
  }

  function stepSummary() {
    const p = document.createElement('p');
    p.className = 'status-line';
    p.textContent = worked.stepped
      ? `Step ${worked.step} taken with α = ${worked.alpha}: the loss on these ${worked.m} images went from `
        + `${fmt(worked.stepped.loss_before)} to ${fmt(worked.stepped.loss_after)}.`
      : `Loss on these ${worked.m} images: ${fmt(worked.loss)}. No step taken yet.`;
    const button = document.createElement('button');
    button.type = 'button';
    button.textContent = 'Take the step';
    button.addEventListener('click', () => $('eq-step').click());
    const row = document.createElement('div');
    row.className = 'row';
    row.append(button, p);
    return row;
  }

  // ---- one cell explained ---------------------------------------------------------

  function markCell(name, row, col, raw) {
    const value = $('eq-cell-value');
    value.textContent = raw;
    value.dataset.value = raw;
    value.dataset.matrix = name;
    value.dataset.row = String(row);
    value.dataset.col = String(col);
  }

  /** The literal of the top-level "value" in the JSON text, exactly as the server wrote it. */
  function rawValue(text, value) {
    const match = /[{,]\s*"value"\s*:\s*(-?[0-9][0-9.eE+-]*|null)/.exec(text || '');
    return match ? match[1] : String(value);
  }

  /** Calls `f(m)` with matrix `name` if it still has cell c, else clears the card. */
  function ifStill(name, c, f) {
    const m = matrix(name);
    if (m && c.row < m.rows && c.col < m.cols) return f(m);
    again = null;
    $('eq-cell').innerHTML = '<p class="muted">Click any cell of a heat map below.</p>';
    const value = $('eq-cell-value');
    value.textContent = '–';
    value.dataset.value = '';
    ['matrix', 'row', 'col'].forEach((k) => { delete value.dataset[k]; });
    return null;
  }

  async function explain(name, c) {
    again = () => ifStill(name, c, () => explain(name, c));
    const box = $('eq-cell');
    try {
      const q = `matrix=${encodeURIComponent(name)}&row=${c.row}&col=${c.col}`;
      const cell = await api(`/api/equations/cell?${q}`);
      markCell(cell.matrix, cell.row, cell.col, rawValue(cell.__text, cell.value));
      box.textContent = '';
      box.append(line('formula', cell.formula), termsTable(cell.terms || []),
        line('text', cell.text));
    } catch (error) {
      box.textContent = `Cannot explain ${name}[${c.row},${c.col}]: ${error.message}`;
    }
  }

  /** A cell of autodiff's gradients: the value only (the server explains its own). */
  function showLocal(name, c) {
    again = () => ifStill(name, c, (m) => showLocal(name, { ...c, value: m.data[c.row * m.cols + c.col] }));
    markCell(name, c.row, c.col, String(c.value));
    $('eq-cell').textContent = '';
    $('eq-cell').append(line('formula', `${name}[${c.row},${c.col}], from Burn's backward pass`));
  }

  function line(cls, text) {
    const p = document.createElement('p');
    p.className = `cell-${cls}`;
    p.textContent = text;
    return p;
  }

  const MAX_TERMS = 16;

  function termsTable(terms) {
    const table = document.createElement('table');
    table.className = 'terms-table';
    if (!terms.length) return table;
    const head = table.insertRow();
    ['k', 'factors', 'product'].forEach((h) => {
      const th = document.createElement('th'); th.textContent = h; head.appendChild(th);
    });
    terms.slice(0, MAX_TERMS).forEach((t) => {
      const tr = table.insertRow();
      tr.insertCell().textContent = String(t.k);
      tr.insertCell().textContent = (t.factors || []).map(fmt).join(' · ');
      tr.insertCell().textContent = fmt(t.product);
    });
    if (terms.length > MAX_TERMS) {
      const td = table.insertRow().insertCell();
      td.colSpan = 3;
      td.className = 'muted';
      td.textContent = `… and ${terms.length - MAX_TERMS} more terms`;
    }
    return table;
  }

  // A step already worked (GET /api/equations; 404 when none) is shown on load.
  api('/api/equations').then(show).catch(() => {});
})();
