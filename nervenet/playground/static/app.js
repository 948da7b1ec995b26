// nervenet playground page: controls -> JSON requests; frames (Server-Sent Events) -> canvases.
// The server trains a real nervenet model per tab; this file only draws and sends choices.
"use strict";

const TOKEN = document.querySelector('meta[name="token"]').content;
const FEATURES = ["x1", "x2", "x1sq", "x2sq", "x1x2", "sinx1", "sinx2"];
const FEATURE_LABELS = {x1: "X\u2081", x2: "X\u2082", x1sq: "X\u2081\u00b2", x2sq: "X\u2082\u00b2",
                        x1x2: "X\u2081X\u2082", sinx1: "sin(X\u2081)", sinx2: "sin(X\u2082)"};
const LEARNING_RATES = [0.00001, 0.0001, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10];
const REG_RATES = [0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10];
const CLASSIFICATION = ["circle", "xor", "gauss", "spiral", "xor_gate"];
const MAX_LAYERS = 6, MAX_UNITS = 8, HEATMAP = 100, THUMB = 25;
// the setup fields as they appear in the page's URL (the whole state: a link reproduces it)
const NUMBERS = ["noise", "train_fraction", "samples", "batch_size", "sigmoid_a", "learning_rate",
                 "regularization_rate", "dropout", "seed"];
const STRINGS = ["dataset", "problem", "activation", "optimizer", "initializer",
                 "regularization", "mode"];

const state = {session: null, setup: null, frame: null, data: null, dataVersion: 0,
               texts: {}, lang: "en", source: null, dirty: false, framesDrawn: 0,
               view: {discretize: false, showTest: false}, surface: null};
window.playground = state;  // read by the browser tests and the bench

const $ = (id) => document.getElementById(id);

// ------------------------------------------------------------------------------ requests
async function api(path, body) {
  const options = {headers: {"X-Token": TOKEN}};
  if (body !== undefined) {
    options.method = "POST";
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  const result = await response.json();
  if (!response.ok) throw new Error(result.error || response.statusText);
  return result;
}

function sessionPath(name) { return `/api/sessions/${state.session}/${name}`; }

function showMessage(text) {
  const box = $("message");
  box.textContent = text || "";
  box.hidden = !text;
}

// Setup changes go to the server one after the other, each made from the setup the one before
// left (``update`` may be a function of it): two quick changes cannot overtake each other, so
// the page and the URL never show a setup that lacks the earlier one.
let setupChanges = Promise.resolve();

function changeSetup(update) {
  setupChanges = setupChanges.then(() => applySetup(
    typeof update === "function" ? update(state.setup) : update));
  return setupChanges;
}

async function applySetup(update) {
  try {
    await api(sessionPath("setup"), update);
    Object.assign(state.setup, update);
    showMessage("");
  } catch (error) {
    showMessage(error.message);
  }
  renderControls();
  writeURL();
}

async function action(name) {
  try {
    await api(sessionPath("action"), {action: name});
    showMessage("");
  } catch (error) {
    showMessage(error.message);
  }
}

// ------------------------------------------------------------------------- URL and start
function readURL() {
  const query = new URLSearchParams(location.search);
  const setup = {};
  for (const key of NUMBERS) if (query.has(key)) setup[key] = Number(query.get(key));
  for (const key of STRINGS) if (query.has(key)) setup[key] = query.get(key);
  if (query.has("features")) setup.features = query.get("features").split(",").filter(Boolean);
  if (query.has("hidden")) {
    const text = query.get("hidden");
    setup.hidden = text ? text.split(",").map(Number) : [];
  }
  if (query.has("batch_norm")) setup.batch_norm = query.get("batch_norm") === "1";
  state.view.discretize = query.get("discretize") === "1";
  state.view.showTest = query.get("show_test") === "1";
  const lang = query.get("lang");
  state.lang = lang === "ko" || lang === "en" ? lang
    : ((navigator.language || "en").toLowerCase().startsWith("ko") ? "ko" : "en");
  return setup;
}

function writeURL() {
  const query = new URLSearchParams({token: TOKEN, lang: state.lang});
  const setup = state.setup;
  for (const key of NUMBERS.concat(STRINGS)) query.set(key, String(setup[key]));
  query.set("features", setup.features.join(","));
  query.set("hidden", setup.hidden.join(","));
  query.set("batch_norm", setup.batch_norm ? "1" : "0");
  query.set("discretize", state.view.discretize ? "1" : "0");
  query.set("show_test", state.view.showTest ? "1" : "0");
  history.replaceState(null, "", "?" + query.toString());
}

async function startSession(setup) {
  let created;
  try {
    created = await api("/api/sessions", setup);
  } catch (error) {  // a hand-edited URL with a bad value: say why, start from the defaults
    showMessage(error.message);
    created = await api("/api/sessions", {});
  }
  state.session = created.session;
  state.setup = created.setup;
  state.dataVersion = 0;
  renderControls();
  writeURL();
  openStream();
}

function openStream() {
  const source = new EventSource(`${sessionPath("events")}?token=${encodeURIComponent(TOKEN)}`);
  state.source = source;
  source.onmessage = (event) => {
    state.frame = JSON.parse(event.data);
    if (state.frame.data_version !== state.dataVersion) loadData();
    if (!state.dirty) {
      state.dirty = true;
      requestAnimationFrame(draw);
    }
  };
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED && state.source === source) {
      showMessage(text("session_lost"));
      startSession(state.setup);  // the server ended the session: start a fresh one
    }
  };
}

async function loadData() {
  const version = state.frame.data_version;
  state.dataVersion = version;
  const data = await api(sessionPath("state"));
  if (data.data_version !== version) return;
  state.data = data;
  buildNetwork();  // the features' thumbnails span the new data's domain
  draw();  // the points, even when no other frame comes (paused, or the fixed network)
}

// ---------------------------------------------------------------------------- languages
function text(key) {
  const entry = state.texts[key];
  return entry ? entry[state.lang] : key;
}

function translate() {
  document.documentElement.lang = state.lang;
  for (const element of document.querySelectorAll("[data-i18n]")) {
    element.textContent = text(element.dataset.i18n);
  }
  for (const element of document.querySelectorAll("[data-i18n-title]")) {
    element.title = text(element.dataset.i18nTitle);
  }
  for (const element of document.querySelectorAll("[data-i18n-label]")) {
    element.label = text(element.dataset.i18nLabel);
  }
  for (const key of Object.keys(state.texts)) {
    if (key.startsWith("tip_") && $(key.slice(4))) $(key.slice(4)).title = text(key);
  }
  $("lang").value = state.lang;
}

// ----------------------------------------------------------------------------- controls
function fillSelect(id, values) {
  $(id).replaceChildren(...values.map((value) => new Option(String(value), String(value))));
}

function renderControls() {
  const s = state.setup;
  for (const [id, key] of [["dataset", "dataset"], ["problem", "problem"], ["mode", "mode"],
                           ["activation", "activation"], ["optimizer", "optimizer"],
                           ["initializer", "initializer"], ["regularization", "regularization"]]) {
    $(id).value = s[key];
  }
  $("learning-rate").value = String(s.learning_rate);
  $("regularization-rate").value = String(s.regularization_rate);
  $("dropout").value = String(s.dropout);
  $("batch-norm").checked = s.batch_norm;
  $("sigmoid-a").value = s.sigmoid_a;
  $("sigmoid-a-value").textContent = s.sigmoid_a;
  $("sigmoid-a").disabled = s.activation !== "sigmoid";
  $("noise").value = Math.round(s.noise * 100);
  $("noise-value").textContent = Math.round(s.noise * 100);
  $("train-ratio").value = Math.round(s.train_fraction * 100);
  $("train-ratio-value").textContent = Math.round(s.train_fraction * 100);
  $("batch-size").value = s.batch_size;
  $("batch-size-value").textContent = s.batch_size;
  $("discretize").checked = state.view.discretize;
  $("show-test").checked = state.view.showTest;
  $("layer-count").textContent = s.hidden.length;
  const backprop = s.mode === "backprop";
  $("add-layer").disabled = !backprop || s.hidden.length >= MAX_LAYERS;
  $("remove-layer").disabled = !backprop || s.hidden.length === 0;
  $("play").disabled = s.mode === "fixed";
  $("header-note").dataset.i18n = "note_mode_" + s.mode;
  $("header-note").textContent = text("note_mode_" + s.mode) + " " + text("note_act_" + s.activation);
  buildNetwork();
}

function bindControls() {
  const numberOf = (id) => Number($(id).value);
  const on = (id, event, handler) => $(id).addEventListener(event, handler);
  on("play", "click", () => action("play"));
  on("pause", "click", () => action("pause"));
  on("step", "click", () => action("step"));
  on("reset", "click", () => action("reset"));
  on("learning-rate", "change", () => changeSetup({learning_rate: numberOf("learning-rate")}));
  on("activation", "change", () => changeSetup({activation: $("activation").value}));
  on("sigmoid-a", "change", () => changeSetup({sigmoid_a: numberOf("sigmoid-a")}));
  on("regularization", "change", () => changeSetup({regularization: $("regularization").value}));
  on("regularization-rate", "change",
     () => changeSetup({regularization_rate: numberOf("regularization-rate")}));
  on("optimizer", "change", () => changeSetup({optimizer: $("optimizer").value}));
  on("initializer", "change", () => changeSetup({initializer: $("initializer").value}));
  on("batch-norm", "change", () => changeSetup({batch_norm: $("batch-norm").checked}));
  on("dropout", "change", () => changeSetup({dropout: numberOf("dropout")}));
  on("noise", "change", () => changeSetup({noise: numberOf("noise") / 100}));
  on("train-ratio", "change", () => changeSetup({train_fraction: numberOf("train-ratio") / 100}));
  on("batch-size", "change", () => changeSetup({batch_size: numberOf("batch-size")}));
  on("regenerate", "click", () => changeSetup((setup) => ({seed: (setup.seed + 1) % 2147483647})));
  on("dataset", "change", () => {
    const dataset = $("dataset").value;
    changeSetup({dataset, problem: CLASSIFICATION.includes(dataset) ? "classification"
                                                                    : "regression"});
  });
  on("problem", "change", () => {
    const problem = $("problem").value;
    changeSetup({problem, dataset: problem === "classification" ? "circle" : "reg_plane"});
  });
  on("mode", "change", () => {
    const mode = $("mode").value;
    changeSetup(() => modeSetup(mode));
  });
  on("add-layer", "click", () => changeSetup((setup) => ({hidden: setup.hidden.concat([2])})));
  on("remove-layer", "click", () => changeSetup((setup) => ({hidden: setup.hidden.slice(0, -1)})));
  on("discretize", "change", () => { state.view.discretize = $("discretize").checked; writeURL(); draw(); });
  on("show-test", "change", () => { state.view.showTest = $("show-test").checked; writeURL(); draw(); });
  on("export-model", "click", () => download("model.nervenet"));
  on("export-code", "click", () => download("train.py"));
  on("surface-button", "click", loadSurface);
  on("lang", "change", () => { state.lang = $("lang").value; translate(); renderControls(); writeURL(); });
  on("weight-editor", "keydown", (event) => {
    if (event.key === "Enter") submitWeight();
    if (event.key === "Escape") $("weight-editor").hidden = true;
  });
  on("weight-editor", "blur", () => { $("weight-editor").hidden = true; });
}

function modeSetup(mode) {
  // each network of the course with the other fields it needs
  if (mode === "perceptron") {
    return {mode, hidden: [], activation: "step", problem: "classification",
            dataset: CLASSIFICATION.includes(state.setup.dataset) ? state.setup.dataset : "gauss",
            learning_rate: 0.1};
  }
  if (mode === "fixed") {
    return {mode, hidden: [2], activation: "step", problem: "classification",
            dataset: "xor_gate", features: ["x1", "x2"]};
  }
  return {mode, hidden: [4, 2], activation: "tanh", learning_rate: 0.03};
}

function download(name) {
  const link = document.createElement("a");
  link.href = `${sessionPath(name)}?token=${encodeURIComponent(TOKEN)}`;
  link.download = name === "train.py" ? "playground_run.py" : "playground.nervenet";
  document.body.appendChild(link);
  link.click();
  link.remove();
}

// ------------------------------------------------------------------------------ network
function layout() {
  // x, y of every node: the 7 features, the hidden layers, the output
  const s = state.setup;
  const width = $("network").clientWidth || 520;
  const columns = s.hidden.length + 2;
  const gap = (width - 60) / (columns - 1);
  const place = (count, column) => Array.from({length: count}, (_, i) =>
    ({x: 20 + column * gap, y: 44 + i * 50}));
  return {inputs: place(FEATURES.length, 0),
          hidden: s.hidden.map((units, l) => place(units, l + 1)),
          output: place(1, columns - 1)};
}

function buildNetwork() {
  const box = $("network");
  for (const element of box.querySelectorAll(".node, .layer-head")) element.remove();
  $("links").replaceChildren();
  const s = state.setup, spots = layout();
  FEATURES.forEach((name, i) => {
    const node = makeNode(spots.inputs[i], `node-${name}`, "feature");
    node.classList.toggle("off", !s.features.includes(name));
    const caption = document.createElement("span");
    caption.className = "caption";
    caption.textContent = FEATURE_LABELS[name];
    node.appendChild(caption);
    node.addEventListener("click", () => toggleFeature(name));
    drawFeature(node.querySelector("canvas"), name);
  });
  s.hidden.forEach((units, l) => {
    const head = document.createElement("div");
    head.className = "layer-head";
    head.style.left = `${spots.hidden[l][0].x - 10}px`;
    head.style.top = "0px";
    const more = s.mode === "backprop" ? `<button class="add-neuron" data-layer="${l}">+</button>
      <button class="remove-neuron" data-layer="${l}">&minus;</button>` : "";
    head.innerHTML = `${more}<div>${units} ${text("neurons")}</div>`;
    box.appendChild(head);
    for (let u = 0; u < units; u++) makeNode(spots.hidden[l][u], `node-${l}-${u}`, "hidden", l, u);
  });
  makeNode(spots.output[0], "node-output", "output", s.hidden.length, 0);
  for (const button of box.querySelectorAll(".add-neuron, .remove-neuron")) {
    button.title = text(button.classList.contains("add-neuron") ? "add_neuron_tip"
                                                                  : "remove_neuron_tip");
    button.addEventListener("click", () => changeUnits(Number(button.dataset.layer),
                                                       button.classList.contains("add-neuron") ? 1 : -1));
  }
  if (state.frame) drawNetwork();
}

function makeNode(spot, id, kind, layer, unit) {
  const node = document.createElement("div");
  node.className = `node ${kind}`;
  node.id = id;
  node.style.left = `${spot.x}px`;
  node.style.top = `${spot.y}px`;
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = THUMB;
  node.appendChild(canvas);
  if (kind !== "feature") {
    const bias = document.createElement("div");
    bias.className = "bias";
    bias.title = text("bias");
    bias.addEventListener("click", (event) => openEditor(event, layer, null, unit));
    node.appendChild(bias);
  }
  $("network").appendChild(node);
  return node;
}

function toggleFeature(name) {
  changeSetup((setup) => {
    const features = setup.features.includes(name)
      ? setup.features.filter((f) => f !== name) : setup.features.concat([name]);
    return {features: FEATURES.filter((f) => features.includes(f))};
  });
}

function changeUnits(layer, delta) {
  changeSetup((setup) => {
    const hidden = setup.hidden.slice();
    hidden[layer] = Math.min(MAX_UNITS, Math.max(1, hidden[layer] + delta));
    return {hidden};
  });
}

function drawFeature(canvas, name) {
  // a feature's value over the plane, computed here: it does not change while training
  const [low, high] = state.data ? state.data.domain : [-6, 6];
  const f = {x1: (a) => a, x2: (a, b) => b, x1sq: (a) => a * a, x2sq: (a, b) => b * b,
             x1x2: (a, b) => a * b, sinx1: (a) => Math.sin(a), sinx2: (a, b) => Math.sin(b)}[name];
  const values = new Uint8Array(THUMB * THUMB);
  const scale = name.endsWith("sq") || name === "x1x2" ? high * high : (name.startsWith("sin") ? 1 : high);
  for (let r = 0; r < THUMB; r++) {
    for (let c = 0; c < THUMB; c++) {
      const a = low + (high - low) * c / (THUMB - 1), b = high - (high - low) * r / (THUMB - 1);
      values[r * THUMB + c] = Math.round((Math.max(-1, Math.min(1, f(a, b) / scale)) + 1) * 127.5);
    }
  }
  paint(canvas, values, THUMB, false);
}

function drawNetwork() {
  const frame = state.frame, s = state.setup;
  const svg = $("links");
  const count = frame.weights.reduce((n, layer) => n + layer.kernel.length * (layer.kernel[0] || []).length, 0);
  if (svg.childElementCount !== count) buildLinks(frame.weights);
  // only the colours and widths change while training: update the existing paths
  let index = 0;
  frame.weights.forEach((layer) => layer.kernel.forEach((row) => row.forEach((w) => {
    const path = svg.children[index++];
    path.setAttribute("stroke", w >= 0 ? "#0877bd" : "#f59322");
    path.setAttribute("stroke-width", Math.min(8, 0.5 + Math.abs(w) * 1.5).toFixed(2));
    path.firstChild.textContent = `${text("weight")} ${w}`;
  })));
  frame.weights.forEach((layer, l) => layer.bias.forEach((b, j) => {
    const node = $(l < s.hidden.length ? `node-${l}-${j}` : "node-output");
    const square = node && node.querySelector(".bias");
    if (square) {
      square.style.background = colour((Math.max(-1, Math.min(1, b)) + 1) * 127.5);
      square.title = `${text("bias")} ${b}`;
    }
  }));
  frame.neurons.forEach((units, l) => units.forEach((encoded, u) => {
    const node = $(`node-${l}-${u}`);
    if (node) paint(node.querySelector("canvas"), decode(encoded), THUMB, false);
  }));
  const output = $("node-output");
  if (output) paint(output.querySelector("canvas"), decode(frame.heatmap), HEATMAP, state.view.discretize);
}

function buildLinks(weights) {
  // one path per weight, from the active features through the hidden layers to the output
  const s = state.setup, spots = layout(), svg = $("links");
  const sources = [spots.inputs.filter((_, i) => s.features.includes(FEATURES[i]))]
    .concat(spots.hidden);
  const targets = spots.hidden.concat([spots.output]);
  const paths = [];
  weights.forEach((layer, l) => layer.kernel.forEach((row, i) => row.forEach((w, j) => {
    const a = (sources[l] || [])[i] || {x: 0, y: 0}, b = (targets[l] || [])[j] || {x: 0, y: 0};
    const x0 = a.x + 40, y0 = a.y + 20, x1 = b.x, y1 = b.y + 20, mid = (x0 + x1) / 2;
    paths.push(`<path d="M${x0},${y0} C${mid},${y0} ${mid},${y1} ${x1},${y1}" stroke-opacity="0.7"
      data-layer="${l}" data-row="${i}" data-unit="${j}"><title></title></path>`);
  })));
  svg.innerHTML = paths.join("");
  for (const path of svg.children) {
    path.addEventListener("click", (event) => openEditor(event, Number(path.dataset.layer),
                                                         Number(path.dataset.row), Number(path.dataset.unit)));
  }
}

function openEditor(event, layer, row, unit) {
  const editor = $("weight-editor");
  const weights = state.frame.weights[layer];
  editor.value = row === null ? weights.bias[unit] : weights.kernel[row][unit];
  editor.dataset.layer = layer;
  editor.dataset.row = row === null ? "" : row;
  editor.dataset.unit = unit;
  editor.style.left = `${event.pageX}px`;
  editor.style.top = `${event.pageY}px`;
  editor.hidden = false;
  editor.focus();
  editor.select();
}

async function submitWeight() {
  const editor = $("weight-editor");
  editor.hidden = true;
  const edit = {layer: Number(editor.dataset.layer), unit: Number(editor.dataset.unit),
                row: editor.dataset.row === "" ? null : Number(editor.dataset.row),
                value: Number(editor.value)};
  try {
    await api(sessionPath("weight"), edit);
    showMessage("");
  } catch (error) {
    showMessage(error.message);
  }
}

// ------------------------------------------------------------------------------ drawing
function decode(encoded) {
  const raw = atob(encoded);
  const values = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) values[i] = raw.charCodeAt(i);
  return values;
}

function colour(value) {
  // 0 -> orange, 127.5 -> light grey, 255 -> blue (TF Playground's colours)
  const t = value / 127.5 - 1;
  const [from, to] = t < 0 ? [[232, 234, 235], [245, 147, 34]] : [[232, 234, 235], [8, 119, 189]];
  const k = Math.abs(t);
  return `rgb(${from.map((c, i) => Math.round(c + (to[i] - c) * k)).join(",")})`;
}

const PALETTE = Array.from({length: 256}, (_, v) => colour(v).match(/\d+/g).map(Number));

function paint(canvas, values, side, discretize) {
  const context = canvas.getContext("2d");
  const image = context.createImageData(side, side);
  for (let i = 0; i < side * side; i++) {
    let v = values[i];
    if (discretize) v = v >= 128 ? 255 : 0;
    const [r, g, b] = PALETTE[v];
    image.data.set([r, g, b, 160], 4 * i);
  }
  if (canvas.width !== side) {
    const buffer = new OffscreenCanvas(side, side);
    buffer.getContext("2d").putImageData(image, 0, 0);
    context.clearRect(0, 0, canvas.width, canvas.height);
    context.drawImage(buffer, 0, 0, canvas.width, canvas.height);
  } else {
    context.putImageData(image, 0, 0);
  }
}

function toPixel(value, low, high, size) { return (value - low) / (high - low) * size; }

function drawPoints(context, rows, domain, size, stroke) {
  const [low, high] = domain;
  const classification = state.setup.problem === "classification";
  for (const [x1, x2, y] of rows) {
    context.beginPath();
    context.arc(toPixel(x1, low, high, size), size - toPixel(x2, low, high, size), 3, 0, 2 * Math.PI);
    context.fillStyle = colour(classification ? y * 255 : (Math.max(-1, Math.min(1, y)) + 1) * 127.5);
    context.fill();
    context.strokeStyle = stroke;
    context.stroke();
  }
}

function draw() {
  state.dirty = false;
  const frame = state.frame;
  if (!frame) return;
  $("epoch").textContent = String(frame.epoch);
  // null: the loss is NaN or infinite (the network diverged)
  $("loss-train").textContent = frame.loss_train === null ? "NaN" : frame.loss_train.toFixed(3);
  $("loss-test").textContent = frame.loss_test === null ? "NaN" : frame.loss_test.toFixed(3);
  if (frame.loss_train === null) showMessage(text("diverged"));
  if (frame.error) showMessage(frame.error);
  const heatmap = $("heatmap");
  paint(heatmap, decode(frame.heatmap), HEATMAP, state.view.discretize);
  if (state.data) {
    const context = heatmap.getContext("2d");
    drawPoints(context, state.data.train, state.data.domain, heatmap.width, "#fff");
    if (state.view.showTest) drawPoints(context, state.data.test, state.data.domain, heatmap.width, "#000");
  }
  drawLossCurve(frame.history);
  drawNetwork();
  drawGradients(frame.gradients);
  drawFeatureSpace(frame.feature_space);
  state.framesDrawn += 1;
}

function drawLossCurve(history) {
  const canvas = $("loss-curve"), context = canvas.getContext("2d");
  context.clearRect(0, 0, canvas.width, canvas.height);
  history = history.filter(([, a, b]) => a !== null && b !== null);
  if (history.length < 2) return;
  const top = Math.max(...history.map(([, a, b]) => Math.max(a, b)), 1e-9);
  const last = history[history.length - 1][0] || 1;
  [[1, "#999"], [2, "#000"]].forEach(([column, stroke]) => {
    context.beginPath();
    history.forEach((row, i) => {
      const x = row[0] / last * canvas.width, y = canvas.height * (1 - row[column] / top);
      if (i === 0) context.moveTo(x, y); else context.lineTo(x, y);
    });
    context.strokeStyle = stroke;
    context.stroke();
  });
}

function drawGradients(gradients) {
  const box = $("gradient-bars");
  if (!gradients) { box.replaceChildren(); return; }
  // log scale: 1e-6 .. 10
  box.innerHTML = gradients.map(([name, norm]) => {
    const width = Math.max(0, Math.min(1, (Math.log10(Math.max(norm, 1e-12)) + 6) / 7)) * 100;
    return `<div class="bar"><span>${name}</span><div><div class="fill" style="width:${width.toFixed(1)}%"></div></div><span>${norm.toExponential(2)}</span></div>`;
  }).join("");
}

function bounds(points) {
  let low = [Infinity, Infinity], high = [-Infinity, -Infinity];
  for (const [a, b] of points) {
    low = [Math.min(low[0], a), Math.min(low[1], b)];
    high = [Math.max(high[0], a), Math.max(high[1], b)];
  }
  const pad = [(high[0] - low[0]) * 0.05 || 0.5, (high[1] - low[1]) * 0.05 || 0.5];
  return [[low[0] - pad[0], high[0] + pad[0]], [low[1] - pad[1], high[1] + pad[1]]];
}

function drawFeatureSpace(space) {
  const canvas = $("feature-space"), context = canvas.getContext("2d");
  const size = canvas.width;
  context.clearRect(0, 0, size, size);
  if (!space) {
    context.fillStyle = "#888";
    context.fillText(text("no_hidden"), 10, 20);
  }
  if (!space || !state.data) return;
  const [xs, ys] = bounds(space.points.concat(space.lines.flat()));
  const px = (p) => [toPixel(p[0], xs[0], xs[1], size), size - toPixel(p[1], ys[0], ys[1], size)];
  context.strokeStyle = "rgba(0,0,0,0.2)";
  for (const line of space.lines) {
    context.beginPath();
    line.forEach((p, i) => { const [x, y] = px(p); if (i) context.lineTo(x, y); else context.moveTo(x, y); });
    context.stroke();
  }
  space.points.forEach((p, i) => {
    const [x, y] = px(p);
    const label = state.data.train[i] ? state.data.train[i][2] : 0;
    context.beginPath();
    context.arc(x, y, 3, 0, 2 * Math.PI);
    context.fillStyle = colour(state.setup.problem === "classification" ? label * 255 : (label + 1) * 127.5);
    context.fill();
  });
  if (space.boundary) {  // w1 h1 + w2 h2 + b = 0
    const [w1, w2, b] = space.boundary;
    context.strokeStyle = "#000";
    context.lineWidth = 2;
    context.beginPath();
    if (Math.abs(w2) > Math.abs(w1)) {
      const at = (h1) => px([h1, -(w1 * h1 + b) / w2]);
      context.moveTo(...at(xs[0]));
      context.lineTo(...at(xs[1]));
    } else {
      const at = (h2) => px([-(w2 * h2 + b) / w1, h2]);
      context.moveTo(...at(ys[0]));
      context.lineTo(...at(ys[1]));
    }
    context.stroke();
    context.lineWidth = 1;
  }
}

async function loadSurface() {
  try {
    state.surface = await api(sessionPath("surface"), {resolution: 25});
    showMessage("");
  } catch (error) {
    showMessage(error.message);
    return;
  }
  const {ticks, losses, path} = state.surface;
  const canvas = $("loss-surface"), context = canvas.getContext("2d"), size = canvas.width;
  const finite = losses.flat().filter((v) => v !== null);
  const low = Math.log(Math.min(...finite) + 1e-9), high = Math.log(Math.max(...finite) + 1e-9);
  const n = ticks.length, cell = size / n;
  losses.forEach((row, i) => row.forEach((value, j) => {
    const t = value === null ? 1 : (Math.log(value + 1e-9) - low) / (high - low || 1);
    context.fillStyle = `hsl(${240 - 180 * t}, 70%, ${25 + 50 * t}%)`;
    context.fillRect(j * cell, size - (i + 1) * cell, cell + 1, cell + 1);
  }));
  const span = ticks[n - 1];
  const px = ([a, b]) => [toPixel(a, -span, span, size), size - toPixel(b, -span, span, size)];
  context.strokeStyle = "#e00";
  context.lineWidth = 2;
  context.beginPath();
  path.forEach((p, i) => { const [x, y] = px(p); if (i) context.lineTo(x, y); else context.moveTo(x, y); });
  context.stroke();
  context.lineWidth = 1;
  const [x, y] = px(path[path.length - 1]);
  context.fillStyle = "#fff";
  context.fillRect(x - 3, y - 3, 6, 6);
}

// -------------------------------------------------------------------------------- start
async function main() {
  const setup = readURL();
  state.texts = await api("/static/i18n.json?token=" + encodeURIComponent(TOKEN));
  fillSelect("learning-rate", LEARNING_RATES);
  fillSelect("regularization-rate", REG_RATES);
  translate();
  bindControls();
  await startSession(setup);
}

main().catch((error) => showMessage(String(error)));
