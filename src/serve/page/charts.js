// Shared drawing helpers for the views: a small canvas line chart, heat maps of
// matrices (one canvas pixel per cell, enlarged by CSS), 28×28 tiles, the matrices'
// base64 decoding and a hover tooltip. Exposed as `window.charts`.
'use strict';

(() => {
  const PALETTE = ['#e4572e', '#1f6feb', '#2a9d4b', '#8e44ad', '#d4a017', '#17a2b8',
    '#6c757d', '#c2185b'];

  // ---- numbers --------------------------------------------------------------------

  /** A contract matrix {rows, cols, f32: base64 of little-endian f32} → {rows, cols, data}. */
  function decode(m) {
    const bytes = Uint8Array.from(atob(m.f32), (c) => c.charCodeAt(0));
    // Float32Array reads the platform's byte order; every browser we meet is little-endian.
    return { rows: m.rows, cols: m.cols, data: new Float32Array(bytes.buffer) };
  }

  /** A short, readable number: 3 significant digits, exponent for very small/large. */
  function fmt(v) {
    if (v === null || v === undefined || Number.isNaN(v)) return '–';
    const a = Math.abs(v);
    // Exponent form without trailing zeros: 1e-4, 1.2e-4, 8.14e-5.
    if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(2).replace(/\.?0+e/, 'e');
    return Number(v.toPrecision(3)).toString();
  }

  /**
   * Round numbers for an axis over [lo, hi]: steps of 1, 2, 2.5 or 5 × 10^k, about
   * `count` of them, and the range widened to whole steps ({lo, hi, ticks}). With `log`
   * the values are log10 units, and the ticks whole decades (every one, or every
   * second, third… so that there are at most `count` + 1).
   */
  function niceTicks(lo, hi, count = 4, log = false) {
    if (!(hi > lo)) hi = lo + 1;
    let step;
    if (log) {
      step = Math.max(1, Math.ceil((Math.ceil(hi) - Math.floor(lo)) / count));
    } else {
      const raw = (hi - lo) / count;
      const magnitude = 10 ** Math.floor(Math.log10(raw));
      step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw * (1 - 1e-9));
    }
    const first = Math.floor(lo / step + 1e-9);
    const last = Math.ceil(hi / step - 1e-9);
    const ticks = [];
    // Multiples of the step, each computed afresh, so that no error accumulates.
    for (let k = first; k <= last; k += 1) ticks.push(Number((k * step).toPrecision(12)));
    return { lo: ticks[0], hi: ticks[ticks.length - 1], ticks };
  }

  // ---- colours --------------------------------------------------------------------

  /** Diverging: blue (−scale) – white (0) – red (+scale). */
  function diverging(v, scale) {
    const t = Math.max(-1, Math.min(1, v / scale));
    const fade = Math.round(255 * (1 - Math.abs(t)));
    return t >= 0 ? [255, fade, fade] : [fade, fade, 255];
  }

  /** Sequential, for values in [0, 1] such as probabilities: white to deep orange-red. */
  function sequential(v) {
    const t = Math.max(0, Math.min(1, v));
    return [Math.round(255 - 35 * t), Math.round(255 - 185 * t), Math.round(255 - 225 * t)];
  }

  /** Ink on paper, for the input pixels (0 = paper, 1 = ink). */
  function inkColour(v) {
    const level = Math.round(255 * (1 - Math.max(0, Math.min(1, v))));
    return [level, level, level];
  }

  function peak(data) {
    let s = 0;
    for (const v of data) s = Math.max(s, Math.abs(v));
    return s || 1e-12;
  }

  /** The colour function for a kind of map: 'diverging' | 'sequential' | 'ink'. */
  function colourer(kind, data) {
    if (kind === 'sequential') return sequential;
    if (kind === 'ink') return inkColour;
    const scale = peak(data);
    return (v) => diverging(v, scale);
  }

  // ---- heat maps ------------------------------------------------------------------

  /**
   * Paints matrix `m` on `canvas`, one canvas pixel per cell, and sizes it in CSS so
   * that a cell is at most `cell` pixels and the whole fits in maxWidth × maxHeight.
   * The canvas keeps `m` for the hover lookup (canvas.matrix).
   */
  function heatmap(canvas, m, options = {}) {
    const { kind = 'diverging', cell = 20, maxWidth = 520, maxHeight = 360 } = options;
    canvas.width = m.cols;
    canvas.height = m.rows;
    const context = canvas.getContext('2d');
    const image = context.createImageData(m.cols, m.rows);
    const colour = colourer(kind, m.data);
    m.data.forEach((v, i) => image.data.set([...colour(v), 255], 4 * i));
    context.putImageData(image, 0, 0);
    // Square cells when they fit; a long thin matrix gets thin cells on its long side.
    const size = Math.min(cell, maxWidth / m.cols, maxHeight / m.rows);
    const wide = Math.max(size, Math.min(cell, maxWidth / m.cols));
    const tall = Math.max(size, Math.min(cell, maxHeight / m.rows));
    canvas.style.width = `${Math.max(1, m.cols * wide)}px`;
    canvas.style.height = `${Math.max(1, m.rows * tall)}px`;
    canvas.classList.add('heat');
    canvas.matrix = m;
    // Cell (row, col) under a point: plain rows × cols geometry.
    canvas.cellAt = (x, y) => ({
      row: Math.floor((y * m.rows) / canvas.clientHeight),
      col: Math.floor((x * m.cols) / canvas.clientWidth),
    });
  }

  /**
   * Paints 28×28 tiles in a grid: tile t is column t of `m` (for X, 784×m) when
   * `byColumn`, else row t (for W1 and dW1, h×784). Tiles are separated by 1 px.
   * One colour scale for all tiles, so that quiet units look quiet.
   */
  function tiles(canvas, m, options = {}) {
    const { kind = 'diverging', byColumn = false, maxWidth = 520, tileSize = 56 } = options;
    const count = byColumn ? m.cols : m.rows;
    const side = 28;
    const at = (t, p) => (byColumn ? m.data[p * m.cols + t] : m.data[t * m.cols + p]);
    // Tiles of tileSize CSS pixels, smaller (down to 12) when many must fit in about
    // maxWidth × maxWidth; as many per row as fit in maxWidth.
    const shown = Math.max(12, Math.min(tileSize, maxWidth / Math.sqrt(count)));
    const fit = Math.max(1, Math.min(count, Math.floor(maxWidth / shown)));
    const rows = Math.ceil(count / fit);
    const per = Math.ceil(count / rows);   // rows evenly filled: 8 tiles as 4 + 4, not 7 + 1
    canvas.width = per * (side + 1) - 1;
    canvas.height = rows * (side + 1) - 1;
    const context = canvas.getContext('2d');
    const image = context.createImageData(canvas.width, canvas.height);
    image.data.fill(255);
    const colour = colourer(kind, m.data);
    for (let t = 0; t < count; t += 1) {
      const values = new Float32Array(side * side);
      for (let p = 0; p < side * side; p += 1) values[p] = at(t, p);
      const x0 = (t % per) * (side + 1);
      const y0 = Math.floor(t / per) * (side + 1);
      values.forEach((v, p) => {
        const i = 4 * ((y0 + Math.floor(p / side)) * canvas.width + x0 + (p % side));
        image.data.set([...colour(v), 255], i);
      });
    }
    context.putImageData(image, 0, 0);
    const scale = Math.min(shown / side, maxWidth / canvas.width);
    canvas.style.width = `${canvas.width * scale}px`;
    canvas.style.height = `${canvas.height * scale}px`;
    canvas.classList.add('heat');
    canvas.matrix = m;
    // Canvas pixel → tile and pixel in the tile → (row, col) of the matrix.
    canvas.cellAt = (x, y) => {
      const px = Math.floor((x * canvas.width) / canvas.clientWidth);
      const py = Math.floor((y * canvas.height) / canvas.clientHeight);
      const tx = Math.floor(px / (side + 1));
      const ty = Math.floor(py / (side + 1));
      const ix = px % (side + 1);
      const iy = py % (side + 1);
      const t = ty * per + tx;
      if (ix >= side || iy >= side || tx >= per || t >= count) return null;
      const p = iy * side + ix;
      return byColumn ? { row: p, col: t } : { row: t, col: p };
    };
  }

  // ---- tooltip and clicks on maps -------------------------------------------------

  const tip = document.createElement('div');
  tip.className = 'tooltip';
  tip.hidden = true;
  document.addEventListener('DOMContentLoaded', () => document.body.appendChild(tip));

  /** The cell of canvas under a mouse event, or null outside the cells. */
  function cellOf(canvas, event) {
    const box = canvas.getBoundingClientRect();
    const x = event.clientX - box.left - canvas.clientLeft;
    const y = event.clientY - box.top - canvas.clientTop;
    const m = canvas.matrix;
    if (!m || !canvas.cellAt) return null;
    const c = canvas.cellAt(x, y);
    if (!c || c.row < 0 || c.col < 0 || c.row >= m.rows || c.col >= m.cols) return null;
    return { ...c, value: m.data[c.row * m.cols + c.col] };
  }

  /** Hover shows "NAME[r,c] = v"; a click calls onClick(cell). */
  function interactive(canvas, name, onClick) {
    canvas.addEventListener('mousemove', (event) => {
      const c = cellOf(canvas, event);
      if (!c) { tip.hidden = true; return; }
      tip.textContent = `${name}[${c.row},${c.col}] = ${fmt(c.value)}`;
      tip.style.left = `${event.pageX + 12}px`;
      tip.style.top = `${event.pageY + 12}px`;
      tip.hidden = false;
    });
    canvas.addEventListener('mouseleave', () => { tip.hidden = true; });
    if (onClick) {
      canvas.addEventListener('click', (event) => {
        const c = cellOf(canvas, event);
        if (c) onClick(c);
      });
    }
  }

  // ---- line charts ----------------------------------------------------------------

  /**
   * A line chart on a canvas: named series of (x, y) points, drawn on the next frame
   * after a change. canvas[data-points] counts the points held, so tests can see it
   * grow. Options: log (log10 y axis), xLabel, yLabel, yMin/yMax (fixed range).
   */
  class LineChart {
    constructor(canvas, options = {}) {
      this.canvas = canvas;
      this.options = options;
      this.series = new Map();
      this.pending = false;
      this.canvas.dataset.points = '0';
      this.draw();
    }

    clear() {
      this.series.clear();
      this.changed();
    }

    /** Adds a point to series `name` (style: {dash, colour, dots}). */
    add(name, x, y, style = {}) {
      if (!Number.isFinite(x) || !Number.isFinite(y)) return;
      if (this.options.log && y <= 0) return;
      let s = this.series.get(name);
      if (!s) {
        s = { x: [], y: [], style, colour: style.colour || PALETTE[this.series.size % PALETTE.length] };
        this.series.set(name, s);
      }
      s.x.push(x);
      s.y.push(y);
      this.changed();
    }

    /** The largest x of series `name`, or -Infinity. */
    lastX(name) {
      const s = this.series.get(name);
      return s && s.x.length ? s.x[s.x.length - 1] : -Infinity;
    }

    changed() {
      let n = 0;
      this.series.forEach((s) => { n += s.x.length; });
      this.canvas.dataset.points = String(n);
      if (this.pending) return;
      this.pending = true;
      requestAnimationFrame(() => { this.pending = false; this.draw(); });
    }

    /** The data's range, padded; on a log chart in log10 units. */
    range() {
      const t = this.options.log ? Math.log10 : (v) => v;
      let [x0, x1, y0, y1] = [Infinity, -Infinity, Infinity, -Infinity];
      this.series.forEach((s) => {
        s.x.forEach((x, i) => {
          x0 = Math.min(x0, x); x1 = Math.max(x1, x);
          y0 = Math.min(y0, t(s.y[i])); y1 = Math.max(y1, t(s.y[i]));
        });
      });
      if (this.options.yMin !== undefined) y0 = Math.min(y0, this.options.yMin);
      if (this.options.yMax !== undefined) y1 = Math.max(y1, this.options.yMax);
      if (!Number.isFinite(x0)) return null;
      if (x1 === x0) { x1 = x0 + 1; }
      if (y1 - y0 < 1e-12) {   // a constant: ±10% around it
        const d = Math.abs(y0) * 0.1 || 0.5;
        y0 -= d; y1 += d;
      }
      // Widened to round numbers, but not past a fixed bound (loss ≥ 0, accuracy ≤ 1).
      const nice = niceTicks(y0, y1, 4, Boolean(this.options.log));
      const low = this.options.yMin !== undefined ? Math.max(nice.lo, this.options.yMin) : nice.lo;
      const high = this.options.yMax !== undefined ? Math.min(nice.hi, this.options.yMax) : nice.hi;
      const ticks = nice.ticks.filter((v) => v >= low && v <= high);
      return { x0, x1, y0: low, y1: high, t, ticks };
    }

    draw() {
      const c = this.canvas;
      // Draw at the device's resolution for sharp lines.
      const ratio = window.devicePixelRatio || 1;
      const width = c.clientWidth || 480;
      const height = c.clientHeight || 220;
      if (c.width !== Math.round(width * ratio)) c.width = Math.round(width * ratio);
      if (c.height !== Math.round(height * ratio)) c.height = Math.round(height * ratio);
      const g = c.getContext('2d');
      g.setTransform(ratio, 0, 0, ratio, 0, 0);
      g.clearRect(0, 0, width, height);
      g.font = '11px system-ui, sans-serif';
      const r = this.range();
      const legend = this.legendLayout(g, width);
      const box = { left: 52, right: width - 10, top: legend.height + 6, bottom: height - 24 };
      if (!r) {
        g.fillStyle = '#5d6773';
        g.fillText('No points yet.', box.left, (box.top + box.bottom) / 2);
        return;
      }
      const sx = (x) => box.left + ((x - r.x0) / (r.x1 - r.x0)) * (box.right - box.left);
      const sy = (y) => box.bottom - ((r.t(y) - r.y0) / (r.y1 - r.y0)) * (box.bottom - box.top);
      this.axes(g, r, box);
      this.series.forEach((s) => this.line(g, s, sx, sy, box));
      legend.items.forEach(({ name, colour, x, y }) => {
        g.fillStyle = colour;
        g.fillRect(x, y, 10, 10);
        g.fillStyle = '#1d232b';
        g.fillText(name, x + 14, y + 9);
      });
    }

    /** The legend's entries placed left to right, wrapping to more rows when needed. */
    legendLayout(g, width) {
      const items = [];
      let [x, y] = [8, 4];
      this.series.forEach((s, name) => {
        const w = 24 + g.measureText(name).width;
        if (x + w > width - 8 && x > 8) { x = 8; y += 15; }
        items.push({ name, colour: s.colour, x, y });
        x += w;
      });
      return { items, height: y + 15 };
    }

    line(g, s, sx, sy) {
      g.strokeStyle = s.colour;
      g.fillStyle = s.colour;
      g.lineWidth = s.style.width || 1.5;
      g.setLineDash(s.style.dash || []);
      // At most ~1500 segments per series: a long run is thinned evenly.
      const stride = Math.max(1, Math.ceil(s.x.length / 1500));
      g.beginPath();
      for (let i = 0; i < s.x.length; i += stride) {
        const [x, y] = [sx(s.x[i]), sy(s.y[i])];
        if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
      }
      const last = s.x.length - 1;
      g.lineTo(sx(s.x[last]), sy(s.y[last]));
      g.stroke();
      g.setLineDash([]);
      if (s.style.dots || s.x.length === 1) {
        s.x.forEach((x, k) => {
          g.beginPath();
          g.arc(sx(x), sy(s.y[k]), 2.5, 0, 2 * Math.PI);
          g.fill();
        });
      }
    }

    axes(g, r, box) {
      g.strokeStyle = '#d8dde3';
      g.fillStyle = '#5d6773';
      g.lineWidth = 1;
      g.strokeRect(box.left, box.top, box.right - box.left, box.bottom - box.top);
      r.ticks.forEach((v) => {
        const y = box.bottom - ((v - r.y0) / (r.y1 - r.y0)) * (box.bottom - box.top);
        g.beginPath(); g.moveTo(box.left, y); g.lineTo(box.right, y); g.stroke();
        const label = this.options.log ? fmt(10 ** v) : fmt(v);
        g.fillText(label, 4, y + 4);
      });
      g.fillText(fmt(r.x0), box.left, box.bottom + 14);
      const end = fmt(r.x1);
      g.fillText(end, box.right - g.measureText(end).width, box.bottom + 14);
      if (this.options.xLabel) {
        const w = g.measureText(this.options.xLabel).width;
        g.fillText(this.options.xLabel, (box.left + box.right - w) / 2, box.bottom + 14);
      }
    }
  }

  // ---- a 10 × 10 count table as a heat map ----------------------------------------

  /** Fills `table` with a confusion matrix (rows = true class, cols = predicted). */
  function confusion(table, counts, names = '0123456789'.split('')) {
    table.textContent = '';
    let top = 1;
    counts.forEach((row, i) => row.forEach((n, j) => { if (i !== j) top = Math.max(top, n); }));
    const head = table.insertRow();
    head.insertCell().textContent = 'true ↓ / said →';
    names.forEach((n) => { const th = document.createElement('th'); th.textContent = n; head.appendChild(th); });
    counts.forEach((row, i) => {
      const tr = table.insertRow();
      const th = document.createElement('th');
      th.textContent = names[i];
      tr.appendChild(th);
      const total = row.reduce((a, b) => a + b, 0) || 1;
      row.forEach((n, j) => {
        const td = tr.insertCell();
        td.textContent = String(n);
        td.dataset.count = String(n);
        td.title = `true ${names[i]}, said ${names[j]}: ${n} (${(100 * n / total).toFixed(1)}% of the ${names[i]}s)`;
        // The diagonal in green by share of its row; the mistakes in red by count.
        td.style.background = i === j
          ? `hsl(140, 45%, ${95 - 40 * (n / total)}%)`
          : n ? `hsl(8, 80%, ${96 - 46 * Math.sqrt(n / top)}%)` : '';
      });
    });
  }

  window.charts = {
    decode, fmt, niceTicks, heatmap, tiles, interactive, LineChart, confusion, PALETTE,
  };
})();
