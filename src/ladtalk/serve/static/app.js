// The page is a client of the HTTP API and nothing more: it uploads files, submits jobs, polls them and shows
// what the server returns. All state (jobs, identities, models) lives in the server, so a reload loses nothing.
"use strict";

const $ = (sel) => document.querySelector(sel);
const $$ = (sel) => Array.from(document.querySelectorAll(sel));
const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const kid of kids.flat()) if (kid !== null && kid !== undefined) e.append(kid);
  return e;
};

async function api(method, path, body) {
  const opts = { method, headers: {} };
  if (body !== undefined) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
  const r = await fetch(path, opts);
  const data = await r.json().catch(() => ({ error: `${r.status} ${r.statusText}` }));
  if (!r.ok) throw new Error(data.error || `${r.status} ${r.statusText}`);
  return data;
}

async function upload(file, kind) {
  const q = new URLSearchParams({ kind, name: file.name || "recording" });
  const r = await fetch(`/api/uploads?${q}`, { method: "POST", body: file,
                                                headers: { "Content-Type": "application/octet-stream" } });
  const data = await r.json().catch(() => ({ error: `${r.status} ${r.statusText}` }));
  if (!r.ok) throw new Error(data.error);
  return data;
}

function toast(message) {
  const t = $("#toast");
  t.textContent = message;
  t.classList.remove("hidden");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => t.classList.add("hidden"), 8000);
}

// run an action from a button: disabled while it runs, any error shown as the server's message
function action(button, fn) {
  button.addEventListener("click", async () => {
    button.disabled = true;
    try { await fn(); await poll(); } catch (e) { toast(e.message); } finally { button.disabled = false; }
  });
}

const state = { jobs: [], identities: [], models: [], info: {}, selectedModel: null, slotKeys: {},
                uploadedWeights: [], recorded: null, lastDone: "" };

// ---------- tabs
function showTab(name) {
  if (!$(`#tabs button[data-tab="${name}"]`)) return;
  $$("#tabs button").forEach((x) => x.classList.toggle("active", x.dataset.tab === name));
  $$(".panel").forEach((p) => p.classList.toggle("active", p.id === name));
}
for (const b of $$("#tabs button")) b.addEventListener("click", () => { location.hash = b.dataset.tab; });
window.addEventListener("hashchange", () => showTab(location.hash.slice(1)));
if (location.hash) showTab(location.hash.slice(1));

// ---------- lists
function fillSelect(select, options, noneLabel) {
  const keep = select.value;
  select.replaceChildren(...options.map(([value, label]) => el("option", { value }, label)),
    ...(noneLabel ? [el("option", { value: "" }, noneLabel)] : []));
  if (options.some(([v]) => v === keep) || (noneLabel && keep === "")) select.value = keep;
}

function renderIdentities() {
  const list = $("#identity-list");
  list.replaceChildren(...state.identities.map((i) => el("div", { class: "card item", "data-identity": i.name },
    el("div", {}, el("h3", {}, i.name),
      el("div", { class: "facts" }, `${i.frames} frames, ${i.seconds} s at ${i.fps.toFixed(2)} fps, ` +
        `${i.size[0]}x${i.size[1]}; face on ${(100 * i.face_share).toFixed(1)}% of frames; crops ${i.crop_size}px`)),
    el("button", { class: "danger", onclick: async () => {
      if (!confirm(`Delete identity ${i.name}?`)) return;
      try { await api("DELETE", `/api/identities/${i.name}`); await refreshLists(); } catch (e) { toast(e.message); }
    } }, "Delete"),
    el("img", { src: `/api/identities/${encodeURIComponent(i.name)}/crops.png`, alt: `face crops of ${i.name}` }))));
  if (!state.identities.length) list.append(el("p", { class: "muted" }, "No identity yet: prepare one above."));
  for (const s of $$(".identity-select")) fillSelect(s, state.identities.map((i) => [i.name, i.name]));
}

function renderModels() {
  const list = $("#model-list");
  list.replaceChildren(...state.models.map((m) => {
    const job = state.jobs.find((j) => j.kind === "train" && j.target === m.name && j.state === "running");
    const steps = m.step !== null ? ` step ${m.step}${m.steps ? " / " + m.steps : ""}` : "";
    return el("div", { class: "card item", "data-model": m.name },
      el("div", {}, el("h3", {}, m.name, el("span", { class: `badge ${m.state}` }, m.state)),
        el("div", { class: "facts" }, `${m.kind || "unknown kind"}${steps}`)),
      el("div", { class: "row" },
        m.kind === "sovqae" ? el("button", { class: "secondary", onclick: () => selectModel(m.name) }, "Curves") : null,
        job ? el("button", { class: "danger", onclick: () => cancelJob(job.id) }, "Stop") : null,
        m.state === "stopped" && !job ? el("button", { class: "secondary", onclick: () => {
          $("#train-name").value = m.name; $("#train-run").click(); } }, "Resume") : null,
        !job ? el("button", { class: "danger", onclick: async () => {
          if (!confirm(`Delete model ${m.name}?`)) return;
          try { await api("DELETE", `/api/models/${m.name}`); await refreshLists(); } catch (e) { toast(e.message); }
        } }, "Delete") : null));
  }));
  if (!state.models.length) list.append(el("p", { class: "muted" }, "No model yet: train a SOVQAE above."));
  for (const s of $$(".model-select")) {
    const kinds = s.dataset.kinds.split(",");
    const usable = state.models.filter((m) => kinds.includes(m.kind) && m.state !== "empty");
    let opts = usable.map((m) => [m.name, `${m.name} (${m.state})`]);
    if (kinds.includes("wav2lip")) opts = opts.concat(state.uploadedWeights);
    fillSelect(s, opts, s.dataset.none);
  }
}

// ---------- charts (a few lines on a canvas; no chart library to download)
function drawChart(canvas, series) {
  const ctx = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height, pad = 34;
  ctx.clearRect(0, 0, W, H);
  const pts = series.flatMap((s) => s.points);
  if (!pts.length) { ctx.fillStyle = "#6b7384"; ctx.fillText("no data yet", W / 2 - 30, H / 2); return; }
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs, x0 + 1), y0 = Math.min(...ys), y1 = Math.max(...ys, y0 + 1e-9);
  const X = (x) => pad + (W - pad - 8) * (x - x0) / (x1 - x0), Y = (y) => H - pad + 14 - (H - pad - 4) * (y - y0) / (y1 - y0);
  ctx.strokeStyle = "#dde1e8"; ctx.beginPath(); ctx.moveTo(pad, 4); ctx.lineTo(pad, H - pad + 14); ctx.lineTo(W - 8, H - pad + 14); ctx.stroke();
  ctx.fillStyle = "#6b7384"; ctx.font = "11px system-ui";
  ctx.fillText(y1.toPrecision(3), 2, 12); ctx.fillText(y0.toPrecision(3), 2, H - pad + 12);
  ctx.fillText(`step ${x0}`, pad, H - 4); ctx.fillText(`${x1}`, W - 40, H - 4);
  series.forEach((s, k) => {
    ctx.strokeStyle = s.color; ctx.fillStyle = s.color; ctx.lineWidth = 1.6; ctx.beginPath();
    s.points.forEach(([x, y], i) => (i ? ctx.lineTo(X(x), Y(y)) : ctx.moveTo(X(x), Y(y))));
    ctx.stroke();
    if (s.points.length === 1) ctx.fillRect(X(s.points[0][0]) - 2, Y(s.points[0][1]) - 2, 4, 4);
    ctx.fillText(s.label, W - 150, 14 + 13 * k);
  });
}

async function selectModel(name) {
  state.selectedModel = name;
  await refreshModelDetail();
}

async function refreshModelDetail() {
  const box = $("#model-detail");
  if (!state.selectedModel) { box.classList.add("hidden"); return; }
  let m;
  // a run that is still queued has no folder yet: keep it selected, its curves appear when it starts
  try { m = await api("GET", `/api/models/${state.selectedModel}`); } catch (e) { box.classList.add("hidden"); return; }
  box.classList.remove("hidden");
  $("#model-title").textContent = `${m.name}: ${m.state}${m.step !== null ? `, step ${m.step}` : ""}`;
  const train = m.metrics.filter((r) => r.split === "train"), val = m.metrics.filter((r) => r.split === "val");
  const series = (rows, key) => rows.filter((r) => typeof r[key] === "number").map((r) => [r.step, r[key]]);
  drawChart($("#chart-loss"), [{ label: "l2", color: "#2f6fde", points: series(train, "l2") }]);
  drawChart($("#chart-val"), [{ label: "reconstruction", color: "#1e8e5a", points: series(val, "recon_psnr") },
                              { label: "restoration", color: "#c0392b", points: series(val, "restore_psnr_mean") }]);
}

// ---------- jobs
function progressLine(job) {
  const p = job.progress;
  if (!p) return el("div", { class: "facts" }, job.state === "queued" ? "waiting for a free worker" : "starting");
  const share = p.total ? p.n / p.total : 0;
  const eta = p.total && p.rate ? ` · ${Math.max(0, (p.total - p.n) / p.rate).toFixed(0)} s left` : "";
  const rate = p.rate ? ` · ${p.rate.toFixed(2)} ${p.unit}/s` : "";
  return el("div", {},
    el("div", { class: "progress" }, el("div", { style: `width:${(100 * share).toFixed(1)}%` })),
    el("div", { class: "facts" }, `${p.desc || "working"}: ${p.n}${p.total ? " / " + p.total : ""}${rate}${eta}`));
}

function jobView(job) {
  const live = job.state === "queued" || job.state === "running";
  return el("div", { class: "job", "data-job": job.id, "data-state": job.state },
    el("div", {}, el("span", { class: "title" }, job.title), el("span", { class: `badge ${job.state}` }, job.state)),
    live ? progressLine(job) : null,
    job.error ? el("div", { class: "error" }, job.error) : null,
    live ? el("div", { class: "row" }, el("button", { class: "danger", onclick: () => cancelJob(job.id) },
      job.kind === "train" ? "Stop" : "Cancel")) : null);
}

async function cancelJob(id) {
  try { await api("POST", `/api/jobs/${id}/cancel`); await poll(); } catch (e) { toast(e.message); }
}

const fileUrl = (job, name) => `/api/jobs/${job.id}/files/${name}`;

function timingsTable(timings) {
  const stages = [...new Set(Object.values(timings).flatMap((t) => Object.keys(t.stage_seconds)))];
  return el("table", {}, el("tr", {}, el("th", {}, "run"), el("th", {}, "frames"), el("th", {}, "seconds"),
      el("th", {}, "FPS"), ...stages.map((s) => el("th", {}, `${s} s`))),
    ...Object.entries(timings).map(([name, t]) => el("tr", {}, el("td", {}, name), el("td", {}, t.frames),
      el("td", {}, t.seconds.toFixed(2)), el("td", {}, t.fps.toFixed(2)),
      ...stages.map((s) => el("td", {}, (t.stage_seconds[s] ?? 0).toFixed(2))))));
}

function videoFigure(label, src, name) {
  return el("figure", {}, el("figcaption", {}, label, " ", el("a", { href: src, download: name }, "download")),
    el("video", { src, controls: "", preload: "auto", "data-name": name }));
}

function scalarRows(obj, prefix = "") {
  return Object.entries(obj).flatMap(([k, v]) => {
    if (v !== null && typeof v === "object" && !Array.isArray(v)) return scalarRows(v, `${prefix}${k}.`);
    if (typeof v === "number" || typeof v === "string") return [[`${prefix}${k}`, typeof v === "number" ? +v.toPrecision(5) : v]];
    return [];
  });
}

function keyValueTable(rows) {
  return el("table", {}, ...rows.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, String(v)))));
}

async function reportView(job, jsonName, rowsFilter) {
  const rep = await (await fetch(fileUrl(job, jsonName))).json();
  const box = el("div", { class: "report" });
  if (Array.isArray(rep.experiments)) {
    const first = ["kind", "strength"];
    const cols = first.concat(Object.keys(rep.experiments[0] || {}).filter(
      (c) => !first.includes(c) && typeof rep.experiments[0][c] !== "object"));
    box.append(el("h3", {}, "Robustness"), el("table", {}, el("tr", {}, ...cols.map((c) => el("th", {}, c))),
      ...rep.experiments.map((r) => el("tr", {}, ...cols.map((c) => el("td", {},
        typeof r[c] === "number" ? +r[c].toPrecision(4) : String(r[c])))))));
  }
  box.prepend(keyValueTable(scalarRows(rowsFilter(rep))));
  for (const f of job.files.filter((f) => f.endsWith(".png"))) box.append(el("img", { src: fileUrl(job, f), alt: f }));
  return box;
}

async function resultView(job) {
  const r = job.result || {};
  if (job.kind === "generate") {
    const v = r.videos;
    return el("div", {}, el("div", { class: "videos" },
      v.ladtalk ? videoFigure("LaDTalk (Wav2Lip + SOVQAE)", fileUrl(job, v.ladtalk), "ladtalk") : null,
      videoFigure("Wav2Lip only", fileUrl(job, v.wav2lip_only), "wav2lip_only")), timingsTable(r.timings));
  }
  if (job.kind === "enhance") {
    return el("div", {}, el("div", { class: "videos" },
      videoFigure("input", `/api/uploads/${job.request.video}/file`, "input"),
      videoFigure("repaired by the SOVQAE", fileUrl(job, r.videos.enhanced), "enhanced")), timingsTable(r.timings));
  }
  if (job.kind === "analyze") return reportView(job, r.report, (rep) => ({ theory: rep.theory }));
  if (job.kind === "evaluate") return reportView(job, r.report, (rep) => { const { files, ...rest } = rep; return rest; });
  if (job.kind === "prepare") return el("div", { class: "facts" }, `identity '${r.identity}' is ready`);
  if (job.kind === "train") return el("div", { class: "facts" }, `model '${r.model}' is trained`);
  return el("div");
}

async function renderSlots() {
  for (const slot of $$(".job-slot")) {
    const job = state.jobs.find((j) => j.kind === slot.dataset.kind);  // newest first
    const key = job ? `${job.id}:${job.state}` : "";
    if (job && job.state === "running") { slot.replaceChildren(el("div", { class: "card" }, jobView(job))); continue; }
    if (state.slotKeys[slot.dataset.kind] === key) continue;  // unchanged: keep videos playing
    state.slotKeys[slot.dataset.kind] = key;
    if (!job) { slot.replaceChildren(); continue; }
    const card = el("div", { class: "card" }, jobView(job));
    slot.replaceChildren(card);
    if (job.state === "done") {
      try { card.append(await resultView(job)); } catch (e) { card.append(el("div", { class: "error" }, e.message)); }
    }
  }
}

function renderJobs() {
  const list = $("#job-list");
  list.replaceChildren(...state.jobs.map(jobView));
  if (!state.jobs.length) list.append(el("p", { class: "muted" }, "No jobs yet."));
}

async function refreshLists() {
  [state.identities, state.models] = await Promise.all([api("GET", "/api/identities"), api("GET", "/api/models")]);
  renderIdentities();
  renderModels();
}

async function poll() {
  try {
    state.jobs = await api("GET", "/api/jobs");
  } catch (e) { return; }
  renderJobs();
  const finished = state.jobs.filter((j) => !["queued", "running"].includes(j.state)).map((j) => j.id).join();
  const training = state.jobs.some((j) => j.kind === "train" && j.state === "running");
  if (finished !== state.lastDone || training) { state.lastDone = finished; await refreshLists(); }
  if (state.selectedModel) await refreshModelDetail();
  await renderSlots();
}

// ---------- actions
const fileOf = (sel) => { const f = $(sel).files[0]; if (!f) throw new Error(`choose a file for "${$(sel).closest("label").textContent.trim()}"`); return f; };
const nameOf = (sel, fallback) => ($(sel).value.trim() || fallback);

action($("#prep-run"), async () => {
  const file = fileOf("#prep-video");
  const up = await upload(file, "video");
  const name = nameOf("#prep-name", file.name.replace(/\.[^.]*$/, "").replace(/[^A-Za-z0-9_-]/g, "_"));
  await api("POST", "/api/jobs", { kind: "prepare", name, upload: up.id, size: +$("#prep-size").value });
});
action($("#prep-synth"), async () => {
  await api("POST", "/api/jobs", { kind: "prepare", name: nameOf("#prep-name", "synthetic"), synthetic: true,
                                   seconds: +$("#prep-seconds").value, size: +$("#prep-size").value });
});
action($("#train-run"), async () => {
  const identity = $("#train-identity").value;
  const body = { kind: "train", identity, name: nameOf("#train-name", `${identity}-sovqae`), preset: $("#train-preset").value };
  body.overrides = [];
  if ($("#train-steps").value) body.overrides.push(`train.max_steps=${+$("#train-steps").value}`);
  if ($("#train-val-every").value) body.overrides.push(`train.val_every=${+$("#train-val-every").value}`);
  await api("POST", "/api/jobs", body);
  state.selectedModel = body.name;
});
action($("#analyze-run"), async () => {
  await api("POST", "/api/jobs", { kind: "analyze", model: state.selectedModel, identity: $("#analyze-identity").value });
});
$("#gen-wav2lip-file").addEventListener("change", async (ev) => {
  const f = ev.target.files[0];
  if (!f) return;
  try {
    const up = await upload(f, "weights");
    state.uploadedWeights.push([up.id, `uploaded ${up.name}`]);
    renderModels();
    $("#gen-wav2lip").value = up.id;
  } catch (e) { toast(e.message); }
});
action($("#gen-run"), async () => {
  const audio = $("#gen-audio").files[0] ? (await upload(fileOf("#gen-audio"), "audio")).id : state.recorded;
  if (!audio) throw new Error("choose a driving audio file or record one");
  await api("POST", "/api/jobs", { kind: "generate", identity: $("#gen-identity").value, audio,
                                   wav2lip: $("#gen-wav2lip").value, sovqae: $("#gen-sovqae").value || null });
});
action($("#enh-run"), async () => {
  const up = await upload(fileOf("#enh-video"), "video");
  await api("POST", "/api/jobs", { kind: "enhance", video: up.id, sovqae: $("#enh-sovqae").value });
});
action($("#eval-run"), async () => {
  const [pred, gt] = await Promise.all([upload(fileOf("#eval-pred"), "video"), upload(fileOf("#eval-gt"), "video")]);
  await api("POST", "/api/jobs", { kind: "evaluate", pred: pred.id, gt: gt.id, align: $("#eval-align").value });
});

// record driving audio in the browser (MediaRecorder -> WebM/Opus, which the server checks like any upload)
let recorder = null;
$("#gen-record").addEventListener("click", async () => {
  if (recorder) { recorder.stop(); return; }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    const chunks = [];
    recorder = new MediaRecorder(stream);
    recorder.ondataavailable = (e) => chunks.push(e.data);
    recorder.onstop = async () => {
      stream.getTracks().forEach((t) => t.stop());
      recorder = null;
      $("#gen-record").textContent = "Record";
      try {
        const up = await upload(new File(chunks, "recording.webm", { type: "audio/webm" }), "audio");
        state.recorded = up.id;
        $("#gen-record-state").textContent = `recorded ${up.seconds ? up.seconds.toFixed(1) + " s" : ""} (used when no file is chosen)`;
      } catch (e) { toast(e.message); }
    };
    recorder.start();
    $("#gen-record").textContent = "Stop recording";
    $("#gen-record-state").textContent = "recording…";
  } catch (e) { toast(`cannot record: ${e.message}`); }
});

(async () => {
  try {
    state.info = await api("GET", "/api/info");
    fillSelect($("#train-preset"), state.info.sovqae_presets.map((p) => [p, p]));
  } catch (e) { toast(e.message); }
  await poll();
  setInterval(poll, 1000);
})();
