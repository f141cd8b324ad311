// Draw a digit: sends the drawing to POST /api/predict as a PNG while you draw (or a
// picture opened or dropped on the pad, as a JPEG), and shows what comes back: the
// answer, the 28×28 input the network received, and its hidden layer. No framework and
// nothing loaded from elsewhere.
'use strict';

const SIDE = 28;          // the network's input is SIDE × SIDE
const PEN_WIDTH = 22;     // pen width in pad pixels (the pad is 280 × 280)
const INK = '#111';
const PAPER = '#fff';
// A picture's longer side as sent: a phone's photograph (4,000 pixels and megabytes) is
// over the server's limits (2,048 pixels, 1 MiB), and 800 pixels keep every stroke.
const PICTURE_SIDE = 800;
const INVITATION = 'Draw one digit, 0 to 9, with a mouse, pen or finger, or drop a picture '
  + 'of one (a photograph will do) on the pad.';

const $ = (id) => document.getElementById(id);
const pad = $('pad');
const ink = pad.getContext('2d');

// The pad's picture changes `version` at every stroke; the answer shown is for
// `answered`. At most one request is in flight; a change meanwhile sends one more when
// it returns. body[data-busy] and #digit[data-version] let a test wait for the answer
// to the final drawing.
const state = {
  version: 0,
  answered: 0,
  inFlight: false,
  again: false,
  mode: 'draw',          // 'draw', 'test' (a test image is shown) or 'picture'
  stroke: null,          // pointer id and last point of the stroke being drawn
  hidden: null,          // last A1
  pinned: null,          // unit clicked by the user
  hovered: null,         // unit under the pointer
  units: new Map(),      // unit → GET /api/hidden/<unit>
};

// ---- drawing ----------------------------------------------------------------------

function clearPad() {
  ink.fillStyle = PAPER;
  ink.fillRect(0, 0, pad.width, pad.height);
  if (state.mode === 'test') $('test-status').textContent = '';
  state.mode = 'draw';
  bump();
  showNothing();
}

function bump() {
  state.version += 1;
  document.body.dataset.version = String(state.version);
}

/** The pointer's position in pad pixels (inside the pad's border, whatever its size). */
function padPoint(event) {
  const box = pad.getBoundingClientRect();
  return {
    x: (event.clientX - box.left - pad.clientLeft) * (pad.width / pad.clientWidth),
    y: (event.clientY - box.top - pad.clientTop) * (pad.height / pad.clientHeight),
  };
}

function strokeTo(from, to) {
  ink.strokeStyle = INK;
  ink.lineWidth = PEN_WIDTH;
  ink.lineCap = 'round';
  ink.lineJoin = 'round';
  ink.beginPath();
  ink.moveTo(from.x, from.y);
  ink.lineTo(to.x, to.y);
  ink.stroke();
}

pad.addEventListener('pointerdown', (event) => {
  if (event.pointerType === 'mouse' && event.button !== 0) return;
  event.preventDefault();
  if (state.mode !== 'draw') clearPad();
  pad.setPointerCapture(event.pointerId);
  const point = padPoint(event);
  state.stroke = { id: event.pointerId, last: point };
  strokeTo(point, point);
  drawn();
});

pad.addEventListener('pointermove', (event) => {
  const stroke = state.stroke;
  if (!stroke || stroke.id !== event.pointerId) return;
  event.preventDefault();
  const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
  for (const e of events.length ? events : [event]) {
    const point = padPoint(e);
    strokeTo(stroke.last, point);
    stroke.last = point;
  }
  drawn();
});

function endStroke(event) {
  if (!state.stroke || state.stroke.id !== event.pointerId) return;
  state.stroke = null;
  drawn();
}
pad.addEventListener('pointerup', endStroke);
pad.addEventListener('pointercancel', endStroke);
// A long press must not open a menu over the pad.
pad.addEventListener('contextmenu', (event) => event.preventDefault());

$('clear').addEventListener('click', clearPad);

/** The drawing changed: ask for an answer (now, or when the request in flight returns). */
function drawn() {
  bump();
  $('source').textContent = 'Your drawing.';
  if (state.inFlight) {
    state.again = true;
  } else {
    send();
  }
}

function send() {
  state.inFlight = true;
  state.again = false;
  document.body.dataset.busy = '1';
  const version = state.version;
  // toBlob takes the pad's pixels now, and encodes them later.
  pad.toBlob((blob) => {
    post(blob)
      .then((answer) => {
        if (state.mode === 'draw' && version > state.answered) {
          showAnswer(answer, version);
        }
      })
      .catch((error) => showError(error.message))
      .finally(() => {
        state.inFlight = false;
        if (state.again && state.mode === 'draw') {
          send();
        } else {
          document.body.dataset.busy = '0';
        }
      });
  }, 'image/png');
}

/** POST /api/predict with an image; one of unknown type is left to the server to sniff. */
async function post(blob) {
  const response = await fetch('/api/predict', {
    method: 'POST',
    headers: { 'Content-Type': blob.type || 'application/octet-stream' },
    body: blob,
  });
  return json(response);
}

async function json(response) {
  let body;
  try {
    body = await response.json();
  } catch (e) {
    throw new Error(`the server answered ${response.status} without JSON`);
  }
  if (!response.ok) throw new Error(body.error || `the server answered ${response.status}`);
  return body;
}

// ---- a picture, opened or dropped ---------------------------------------------------

/**
 * A picture file: shown whole on the pad and sent, at most PICTURE_SIDE pixels on its
 * longer side, as a JPEG on white (a transparent background becomes paper). A format the
 * browser cannot show (PGM) is sent as it is, and the pad shows what the network saw.
 */
async function openPicture(file) {
  if (!file) return;
  state.mode = 'picture';
  bump();
  const version = state.version;
  $('test-status').textContent = '';
  $('message').textContent = '';
  $('source').textContent = `The picture ${file.name}. Draw on the pad to start again.`;
  document.body.dataset.busy = '1';
  try {
    let body = file;
    let shown = false;
    try {
      const sized = await scaledPicture(file);
      if (state.version !== version) return;
      showOnPad(sized, true);
      shown = true;
      body = await new Promise((resolve) => sized.toBlob(resolve, 'image/jpeg', 0.92));
    } catch (error) {
      body = file;
    }
    const answer = await post(body);
    if (state.version !== version) return;
    if (!shown) showOnPad(inputCanvas(answer.input), false);
    showAnswer(answer, version);
  } catch (error) {
    if (state.version === version) {
      showNothing();
      $('source').textContent = `The picture ${file.name}.`;
      showError(error.message);
    }
  } finally {
    document.body.dataset.busy = '0';
  }
}

/** The picture in `file` on a canvas, on paper, at most PICTURE_SIDE on its longer side. */
async function scaledPicture(file) {
  const bitmap = await createImageBitmap(file);
  const scale = Math.min(1, PICTURE_SIDE / Math.max(bitmap.width, bitmap.height));
  const sized = document.createElement('canvas');
  sized.width = Math.max(1, Math.round(bitmap.width * scale));
  sized.height = Math.max(1, Math.round(bitmap.height * scale));
  const context = sized.getContext('2d');
  context.fillStyle = PAPER;
  context.fillRect(0, 0, sized.width, sized.height);
  context.drawImage(bitmap, 0, 0, sized.width, sized.height);
  bitmap.close();
  return sized;
}

/** `canvas` on the pad, whole and centred on paper; smoothed, or in square pixels. */
function showOnPad(canvas, smooth) {
  ink.fillStyle = PAPER;
  ink.fillRect(0, 0, pad.width, pad.height);
  const scale = Math.min(pad.width / canvas.width, pad.height / canvas.height);
  const [w, h] = [canvas.width * scale, canvas.height * scale];
  ink.imageSmoothingEnabled = smooth;
  ink.drawImage(canvas, (pad.width - w) / 2, (pad.height - h) / 2, w, h);
  ink.imageSmoothingEnabled = true;
}

/** 784 input values as a 28 × 28 canvas, ink dark on paper. */
function inputCanvas(values) {
  const small = document.createElement('canvas');
  small.width = SIDE;
  small.height = SIDE;
  paintDigit(small, values);
  return small;
}

$('open-picture').addEventListener('click', () => $('picture-file').click());
$('picture-file').addEventListener('change', (event) => {
  openPicture(event.target.files[0]);
  event.target.value = '';   // the same file chosen again is a change too
});
for (const type of ['dragenter', 'dragover']) {
  pad.addEventListener(type, (event) => {
    event.preventDefault();
    pad.classList.add('dropping');
  });
}
pad.addEventListener('dragleave', () => pad.classList.remove('dropping'));
pad.addEventListener('drop', (event) => {
  event.preventDefault();
  pad.classList.remove('dropping');
  openPicture(event.dataTransfer.files[0]);
});

// ---- the answer -------------------------------------------------------------------

// The classes' names: the digits, or those /api/model gives (e.g. Fashion-MNIST's).
let names = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

const bars = [];
for (let d = 0; d < 10; d += 1) {
  const column = document.createElement('div');
  column.className = 'bar';
  column.innerHTML = '<span class="p"></span><span class="track"><span class="fill"></span></span>'
    + `<span class="label">${d}</span>`;
  $('bars').appendChild(column);
  bars.push(column);
}

function showAnswer(answer, version) {
  state.answered = version;
  const digit = $('digit');
  digit.textContent = names[answer.digit];
  digit.dataset.version = String(version);
  const p = answer.probabilities;
  $('confidence').textContent = `${(100 * p[answer.digit]).toFixed(1)}% sure`;
  bars.forEach((bar, d) => {
    bar.dataset.p = String(p[d]);
    bar.classList.toggle('top', d === answer.digit);
    bar.querySelector('.fill').style.height = `${(100 * p[d]).toFixed(1)}%`;
    bar.querySelector('.p').textContent = p[d] >= 0.005 ? `${Math.round(100 * p[d])}%` : '';
    bar.title = `${names[d]}: ${(100 * p[d]).toFixed(2)}%`;
  });
  $('message').textContent = '';
  drawInput(answer.input);
  showHidden(answer.hidden);
}

function showNothing() {
  state.answered = state.version;
  const digit = $('digit');
  digit.textContent = '?';
  digit.dataset.version = String(state.version);
  $('confidence').textContent = '';
  bars.forEach((bar) => {
    bar.dataset.p = '';
    bar.classList.remove('top');
    bar.querySelector('.fill').style.height = '0';
    bar.querySelector('.p').textContent = '';
  });
  $('message').textContent = '';
  $('source').textContent = INVITATION;
  drawInput(new Array(SIDE * SIDE).fill(0));
  showHidden(null);
}

function showError(message) {
  $('message').textContent = message;
}

/** 784 values in [0, 1] (ink = 1) drawn as dark ink on paper on a 28 × 28 canvas. */
function paintDigit(canvas, values) {
  const context = canvas.getContext('2d');
  const image = context.createImageData(SIDE, SIDE);
  values.forEach((v, i) => {
    const level = Math.round(255 * (1 - Math.min(1, Math.max(0, v))));
    image.data.set([level, level, level, 255], 4 * i);
  });
  context.putImageData(image, 0, 0);
}

function drawInput(values) {
  paintDigit($('seen'), values);
}

// ---- the hidden layer -------------------------------------------------------------

let unitCells = [];

function buildUnits(hidden) {
  const grid = $('units');
  grid.textContent = '';
  // A wide grid: about twice as many columns as rows.
  const columns = Math.max(1, Math.ceil(Math.sqrt(2 * hidden)));
  grid.style.gridTemplateColumns = `repeat(${columns}, 1fr)`;
  // Squares of at most 26 pixels, at least the width of the space.
  grid.style.maxWidth = `${Math.min(760, 26 * columns)}px`;
  grid.classList.toggle('many', hidden > 256);
  unitCells = [];
  for (let j = 0; j < hidden; j += 1) {
    const cell = document.createElement('button');
    cell.type = 'button';
    cell.className = 'unit';
    cell.dataset.unit = String(j);
    cell.addEventListener('mouseenter', () => { state.hovered = j; showUnit(); });
    cell.addEventListener('mouseleave', () => { state.hovered = null; showUnit(); });
    cell.addEventListener('focus', () => { state.hovered = j; showUnit(); });
    cell.addEventListener('click', () => {
      state.pinned = state.pinned === j ? null : j;
      showUnit();
    });
    grid.appendChild(cell);
    unitCells.push(cell);
  }
}

function showHidden(hidden) {
  state.hidden = hidden;
  const peak = hidden ? Math.max(...hidden, 1e-9) : 1;
  unitCells.forEach((cell, j) => {
    const a = hidden ? hidden[j] : 0;
    const t = Math.max(0, a) / peak;
    // Dark for a silent unit, through orange to pale yellow for the most active.
    cell.style.backgroundColor = `hsl(${30 + 25 * t}, ${a > 0 ? 100 : 0}%, ${8 + 62 * t}%)`;
    cell.title = `unit ${j}: A1 = ${a.toFixed(3)}`;
  });
  showUnit();
}

/** The unit to describe: the pinned one, else the hovered one, else the most active. */
function chosenUnit() {
  if (state.pinned !== null) return state.pinned;
  if (state.hovered !== null) return state.hovered;
  if (!state.hidden) return null;
  let best = 0;
  state.hidden.forEach((a, j) => { if (a > state.hidden[best]) best = j; });
  return state.hidden[best] > 0 ? best : null;
}

async function showUnit() {
  const j = chosenUnit();
  unitCells.forEach((cell, k) => {
    cell.classList.toggle('chosen', k === j);
    cell.classList.toggle('pinned', k === state.pinned);
  });
  if (j === null) {
    $('unit-title').textContent = 'Draw a digit to light up the hidden units.';
    return;
  }
  let unit = state.units.get(j);
  if (!unit) {
    try {
      unit = await json(await fetch(`/api/hidden/${j}`));
    } catch (error) {
      showError(error.message);
      return;
    }
    state.units.set(j, unit);
  }
  if (chosenUnit() !== j) return;   // the pointer moved on meanwhile
  paintWeights($('unit-weights'), unit.weights);
  const a = state.hidden ? state.hidden[j] : null;
  const how = state.pinned === j ? 'kept; click again to let go'
    : state.hovered === j ? 'under the pointer' : 'the most active unit';
  $('unit-title').textContent = `Unit ${j} (${how}): activation `
    + `${a === null ? '–' : a.toFixed(2)}, bias ${unit.bias.toFixed(2)}.`;
  paintVotes(unit.outgoing);
}

/** Weights on a diverging scale: red positive, white zero, blue negative. */
function paintWeights(canvas, weights) {
  const context = canvas.getContext('2d');
  const image = context.createImageData(SIDE, SIDE);
  const scale = Math.max(...weights.map(Math.abs), 1e-12);
  weights.forEach((w, i) => {
    const v = Math.max(-1, Math.min(1, w / scale));
    const fade = Math.round(255 * (1 - Math.abs(v)));
    const rgb = v >= 0 ? [255, fade, fade] : [fade, fade, 255];
    image.data.set([...rgb, 255], 4 * i);
  });
  context.putImageData(image, 0, 0);
}

function paintVotes(outgoing) {
  const box = $('unit-votes');
  box.textContent = '';
  const scale = Math.max(...outgoing.map(Math.abs), 1e-12);
  outgoing.forEach((w, d) => {
    const vote = document.createElement('div');
    vote.className = 'vote';
    const height = (50 * Math.abs(w)) / scale;
    vote.innerHTML = '<span class="track"><span class="fill"></span></span>'
      + `<span class="label">${names[d]}</span>`;
    const fill = vote.querySelector('.fill');
    fill.style.height = `${height.toFixed(1)}%`;
    fill.classList.add(w >= 0 ? 'up' : 'down');
    vote.title = `${names[d]}: ${w.toFixed(3)}`;
    box.appendChild(vote);
  });
}

// ---- the test set -----------------------------------------------------------------

async function browse(which) {
  try {
    const answer = await json(await fetch(`/api/test/${which}`));
    state.mode = 'test';
    bump();
    // The test image, enlarged on the pad; drawing again starts afresh.
    showOnPad(inputCanvas(answer.input), false);
    showAnswer(answer, state.version);
    const verdict = answer.correct ? 'right' : 'wrong';
    const text = `Test image ${answer.index}: labelled ${names[answer.label]}; the network `
      + `says ${names[answer.digit]} (${verdict}). Draw on the pad to start again.`;
    $('test-status').textContent = text;
    $('source').textContent = `Test image ${answer.index} (label ${names[answer.label]}).`;
  } catch (error) {
    showError(error.message);
  }
}

$('random-test').addEventListener('click', () => browse('random'));
$('mistake-test').addEventListener('click', () => browse('mistake'));

// ---- start, and a model opened later -----------------------------------------------

function percent(x) {
  return `${(100 * x).toFixed(2)}%`;
}

// The run shown (its directory), to notice when another was opened elsewhere.
let shownRun;

/** No Draw model on the server: say so, and where to get one. */
function showNoModel(error) {
  shownRun = null;
  document.body.dataset.model = '';
  $('draw-empty').hidden = false;
  $('draw-grid').hidden = true;
  $('model-info').textContent = error.status === 404
    ? 'No model is loaded: train one, or open a run.'
    : `Cannot describe the model: ${error.message}`;
  buildUnits(0);
  $('random-test').disabled = true;
  $('mistake-test').disabled = true;
}

/**
 * Describes the Draw model: `model` is a ModelInfo (from POST /api/runs/NAME/open),
 * or absent to fetch GET /api/model. Starts the pad afresh.
 */
async function loadModel(model) {
  await window.nav.ready;
  clearPad();
  state.units.clear();
  state.pinned = null;
  if (!model) {
    try {
      model = await window.nav.api('/api/model');
    } catch (error) {
      showNoModel(error);
      return;
    }
  }
  shownRun = model.run;
  document.body.dataset.model = String(model.run);
  $('draw-empty').hidden = true;
  $('draw-grid').hidden = false;
  if (Array.isArray(model.classes) && model.classes.length === 10) {
    names = model.classes.map(String);
    bars.forEach((bar, d) => { bar.querySelector('.label').textContent = names[d]; });
  }
  buildUnits(model.hidden);
  showHidden(null);
  describe(model);
}

function describe(model) {
  const c = model.config;
  const batch = c.train.batch_size === 'full' ? 'full batch' : `batch ${c.train.batch_size}`;
  const how = c.mode === 'manual' ? `hand-derived gradients with ${c.train.optimizer}`
    : `autodiff with ${c.train.optimizer}`;
  let text = `Run ${model.run}: 784 inputs → ${model.hidden} hidden units (ReLU) → 10 `
    + `(softmax), trained with ${how}, ${c.train.epochs} epochs, ${batch}, `
    + `α ${c.train.learning_rate}; running on ${model.backend}.`;
  $('test-status').textContent = '';
  if (model.test) {
    text += ` Test accuracy ${percent(model.test.accuracy)} on `
      + `${model.test.images.toLocaleString('en')} images.`;
    $('random-test').disabled = false;
    $('mistake-test').disabled = model.test.mistakes === 0;
  } else {
    $('random-test').disabled = true;
    $('mistake-test').disabled = true;
    $('test-status').textContent = `Browsing is unavailable: ${model.test_unavailable}`;
  }
  $('model-info').textContent = text;
}

/** The Draw tab shown: reload when the server's model is not the one shown. */
async function checkModel() {
  if (shownRun === undefined) return;   // the first load is still under way
  let run = null;
  try {
    run = (await window.nav.api('/api/model')).run;
  } catch (error) {
    run = null;
  }
  if (run !== shownRun) loadModel();
}

// For the other views: drawView.reload(modelInfo?) after opening a run.
window.drawView = { reload: loadModel };
window.nav.onShow('draw', checkModel);

loadModel();
