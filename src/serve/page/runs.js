// The Runs view: the runs in the artifacts directory (GET /api/runs); one opened
// (GET /api/runs/NAME) shows its config, summary and metric curves, followed live by
// the event stream GET /api/runs/NAME/events; "Open in Draw" loads it in the Draw view
// (POST /api/runs/NAME/open).
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const { api } = window.nav;
  const { LineChart, fmt } = window.charts;

  const charts = {
    loss: new LineChart($('runs-chart-loss'), { xLabel: 'step', yMin: 0 }),
    accuracy: new LineChart($('runs-chart-accuracy'), { xLabel: 'step', yMax: 1 }),
    other: new LineChart($('runs-chart-other'), { xLabel: 'step' }),
  };

  let opened = null;        // the run shown
  let source = null;        // its EventSource
  let seen = new Set();     // rows drawn, as "tag step wall_time" (streams resend them)

  // ---- the list -------------------------------------------------------------------

  async function refresh() {
    $('runs-message').textContent = '';
    let list;
    try {
      list = await api('/api/runs');
    } catch (error) {
      $('runs-message').textContent = `Cannot list the runs: ${error.message}`;
      return;
    }
    $('runs-dir').textContent = list.dir ? `in ${list.dir}/` : '';
    const body = $('runs-table').tBodies[0];
    body.textContent = '';
    (list.runs || []).forEach((run) => body.appendChild(runRow(run)));
    if (!(list.runs || []).length) {
      const td = body.insertRow().insertCell();
      td.colSpan = 5;
      td.className = 'muted';
      td.textContent = 'No runs yet: train one in the Train view.';
    }
  }

  function runRow(run) {
    const tr = document.createElement('tr');
    tr.dataset.run = run.name;
    tr.dataset.status = run.status;
    tr.classList.toggle('chosen', run.name === opened);
    tr.tabIndex = 0;
    const cells = [
      run.name,
      run.status,
      `${run.epochs_done ?? '–'} / ${run.epochs ?? '–'}`,
      run.test_accuracy === null || run.test_accuracy === undefined
        ? '–' : `${(100 * run.test_accuracy).toFixed(2)}%`,
      run.modified ? new Date(1000 * run.modified).toLocaleString() : '–',
    ];
    cells.forEach((text) => { tr.insertCell().textContent = text; });
    if (run.problem) tr.cells[1].title = run.problem;
    if (run.live) {
      const badge = document.createElement('span');
      badge.className = 'badge live';
      badge.textContent = 'live';
      tr.cells[0].append(' ', badge);
    }
    tr.addEventListener('click', () => openRun(run.name, run.live));
    tr.addEventListener('keydown', (e) => { if (e.key === 'Enter') openRun(run.name, run.live); });
    return tr;
  }

  // ---- one run --------------------------------------------------------------------

  async function openRun(name, live) {
    if (source) source.close();
    source = null;
    opened = name;
    seen = new Set();
    Object.values(charts).forEach((c) => c.clear());
    document.querySelectorAll('#runs-table tr[data-run]').forEach((tr) => {
      tr.classList.toggle('chosen', tr.dataset.run === name);
    });
    $('runs-detail').hidden = false;
    $('runs-detail').dataset.run = name;
    $('runs-name').textContent = name;
    $('runs-live').hidden = !live;
    let run;
    try {
      run = await api(`/api/runs/${encodeURIComponent(name)}`);
    } catch (error) {
      $('runs-message').textContent = `Cannot open ${name}: ${error.message}`;
      return;
    }
    if (opened !== name) return;   // another run was clicked meanwhile
    $('runs-config').textContent = run.config || '';
    showSummary(run.summary);
    (run.rows || []).forEach(addRow);
    Object.values(charts).forEach((c) => c.draw());
    follow(name);
  }

  function follow(name) {
    source = new EventSource(`/api/runs/${encodeURIComponent(name)}/events`);
    source.addEventListener('row', (event) => addRow(JSON.parse(event.data)));
    source.addEventListener('summary', (event) => showSummary(JSON.parse(event.data)));
  }

  /** One metrics.csv row onto the chart its tag belongs to. */
  function addRow(row) {
    const key = `${row.tag} ${row.step} ${row.wall_time}`;
    if (seen.has(key)) return;
    seen.add(key);
    $('runs-rows').textContent = String(seen.size);
    const tag = String(row.tag);
    const value = Number(row.value);
    const chart = /loss/.test(tag) ? charts.loss : /acc/.test(tag) ? charts.accuracy : charts.other;
    // Tags from whole-set evaluations are few: dots make them visible.
    const style = /^(valid|test)\//.test(tag) ? { dots: true } : {};
    chart.add(tag, Number(row.step), value, style);
  }

  /** summary.json as a list; nested values as compact JSON. */
  function showSummary(summary) {
    const list = $('runs-summary');
    list.textContent = '';
    if (!summary) {
      list.textContent = 'No summary.json yet (the run has not finished).';
      return;
    }
    Object.entries(summary).forEach(([key, value]) => {
      const dt = document.createElement('dt');
      dt.textContent = key;
      const dd = document.createElement('dd');
      // Nested values (e.g. test: {accuracy, images, loss}) as "key value" pairs.
      const plain = (v) => (typeof v === 'number' ? fmt(v)
        : typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v));
      dd.textContent = typeof value === 'object' && value !== null && !Array.isArray(value)
        ? Object.entries(value).map(([k, v]) => `${k} ${plain(v)}`).join(', ')
        : plain(value);
      list.append(dt, dd);
    });
  }

  $('runs-open').addEventListener('click', async () => {
    if (!opened) return;
    try {
      const info = await api(`/api/runs/${encodeURIComponent(opened)}/open`, { method: 'POST' });
      await window.drawView.reload(info);
      window.nav.show('draw');
    } catch (error) {
      $('runs-message').textContent = `Cannot open ${opened} in Draw: ${error.message}`;
    }
  });

  $('runs-refresh').addEventListener('click', refresh);
  window.nav.onShow('runs', () => {
    refresh();
    Object.values(charts).forEach((c) => c.draw());
  });
})();
