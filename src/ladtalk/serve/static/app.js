// The page is a client of the HTTP API and nothing more: it uploads files, submits jobs, polls them and shows
// what the server returns. All state (jobs, identities, models, uploads) lives in the server's data folder, so a
// reload, or a restart of the server, loses nothing. It polls GET /api/overview and redraws a list only when it
// changed (a model copied into DATA/models/ appears without any job having run).
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

const state = { jobs: [], identities: [], models: [], uploads: [], info: {}, selectedModel: null, slotKeys: {},
                keys: {}, disk: null };
const LIVE = ["queued", "running"];
const mb = (bytes) => `${(bytes / 2 ** 20).toFixed(bytes < 2 ** 20 ? 2 : 1)} MB`;

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
      await run(() => api("DELETE", `/api/identities/${i.name}`));
    } }, "Delete"),
    el("img", { src: `/api/identities/${encodeURIComponent(i.name)}/crops.png`, alt: `face crops of ${i.name}` }))));
  if (!state.identities.length) list.append(el("p", { class: "muted" }, "No identity yet: prepare one above."));
  for (const s of $$(".identity-select")) fillSelect(s, state.identities.map((i) => [i.name, i.name]));
}

function renderModels() {
  const list = $("#model-list");
  list.replaceChildren(...state.models.map((m) => {
    const job = state.jobs.find((j) => j.kind === "train" && (j.request.name === m.name || j.target === m.name) &&
                                       LIVE.includes(j.state));
    const steps = m.step !== null ? ` step ${m.step}${m.steps ? " / " + m.steps : ""}` : "";
    return el("div", { class: "card item", "data-model": m.name },
      el("div", {}, el("h3", {}, m.name, el("span", { class: `badge ${m.state}` }, m.state)),
        el("div", { class: "facts" }, `${m.kind || "unknown kind"}${steps}`)),
      el("div", { class: "row" },
        m.kind ? el("button", { class: "secondary", onclick: () => selectModel(m.name) }, "Curves") : null,
        job ? el("button", { class: "danger", onclick: () => cancelJob(job.id) }, "Stop") : null,
        m.resumable && !job ? el("button", { class: "secondary resume", onclick: () => run(async () => {
          const j = await api("POST", `/api/models/${m.name}/resume`);
          state.selectedModel = j.target; }) }, "Resume") : null,
        !job ? el("button", { class: "danger", onclick: async () => {
          if (!confirm(`Delete model ${m.name}?`)) return;
          await run(() => api("DELETE", `/api/models/${m.name}`));
        } }, "Delete") : null));
  }));
  if (!state.models.length) list.append(el("p", { class: "muted" }, "No model yet: train one above, or copy a lip-sync model folder into DATA/models/."));
  for (const s of $$(".model-select")) {
    const kinds = s.dataset.kinds.split(",");
    const usable = state.models.filter((m) => kinds.includes(m.kind) && m.state !== "empty");
    let opts = usable.map((m) => [m.name, `${m.name} (${m.state})`]);
    if (kinds.includes("wav2lip") || kinds.includes("syncnet_expert")) {
      // the shipped bases first: what works before anything is trained
      opts = (state.builtin || []).map((b) => [b.name, b.label]).concat(opts);
      opts = opts.concat(state.uploads.filter((u) => u.kind === "weights").map((u) => [u.id, `uploaded ${u.name || u.id}`]));
    }
    fillSelect(s, opts, s.dataset.none);
  }
}

// files a job can read: uploads of the right kind and the videos of finished jobs ("JOB_ID/FILE")
function mediaOptions(kinds) {
  const speech = kinds.includes("audio");  // any upload with sound drives a generate, a video too
  const ups = state.uploads.filter((u) => (speech ? u.kind === "audio" || u.has_audio : kinds.includes(u.kind)))
    .map((u) => [u.id, `${u.name || u.id}${u.seconds ? ` (${u.seconds.toFixed(1)} s)` : ""}`]);
  const results = state.jobs.filter((j) => j.state === "done").flatMap((j) => j.files.filter((f) => f.endsWith(".mp4"))
    .map((f) => [`${j.id}/${f}`, `${f} from "${j.title}"`]));
  return ups.concat(results);
}

function renderMediaSelects() {
  for (const s of $$(".media-select")) fillSelect(s, mediaOptions(s.dataset.kinds.split(",")), "— choose —");
}

async function refreshDisk() {
  try { state.disk = await api("GET", "/api/disk"); } catch (e) { return; }
  const d = state.disk, f = d.folders;
  $("#disk").textContent = `uploads ${mb(f.uploads)} · identities ${mb(f.identities)} · models ${mb(f.models)} · ` +
    `job results ${mb(f.jobs)} · free on the disk ${mb(d.free)}`;
  renderFiles();
}

function renderFiles() {
  const size = (sub, key) => (state.disk && state.disk.items[sub][key] !== undefined ? mb(state.disk.items[sub][key]) : "");
  const uploads = $("#upload-list");
  const sourceOf = (u) => state.identities.filter((i) => i.source.replace(/\.[^.]*$/, "") === u.id).map((i) => i.name);
  uploads.replaceChildren(...state.uploads.map((u) => el("div", { class: "item", "data-upload": u.id },
    el("div", {}, el("span", { class: "title" }, u.name || u.id), " ",
      el("span", { class: "facts" }, `${u.kind || "file"}${u.seconds ? `, ${u.seconds.toFixed(1)} s` : ""}, ${size("uploads", u.id)}` +
        (sourceOf(u).length ? `; the video of identity ${sourceOf(u).join(", ")}` : ""))),
    el("button", { class: "danger", onclick: async () => {
      if (!confirm(`Delete upload ${u.name || u.id}?`)) return;
      await run(() => api("DELETE", `/api/uploads/${u.id}`));
    } }, "Delete"))));
  if (!state.uploads.length) uploads.append(el("p", { class: "muted" }, "No uploads."));
  const results = $("#result-list");
  const finished = state.jobs.filter((j) => !LIVE.includes(j.state));
  results.replaceChildren(...finished.map((j) => el("div", { class: "item", "data-result": j.id },
    el("div", {}, el("span", { class: "title" }, j.title), el("span", { class: `badge ${j.state}` }, j.state), " ",
      el("span", { class: "facts" }, `${j.files.length} file${j.files.length === 1 ? "" : "s"}, ${size("jobs", j.id)}`)),
    el("button", { class: "danger", onclick: () => deleteJob(j) }, "Delete"))));
  if (!finished.length) results.append(el("p", { class: "muted" }, "No finished jobs."));
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
  if (m.kind === "sovqae") {
    drawChart($("#chart-loss"), [{ label: "l2", color: "#2f6fde", points: series(train, "l2") }]);
    drawChart($("#chart-val"), [{ label: "reconstruction", color: "#1e8e5a", points: series(val, "recon_psnr") },
                                { label: "restoration", color: "#c0392b", points: series(val, "restore_psnr_mean") }]);
  } else {  // the lip-sync trainers log a loss for both splits
    drawChart($("#chart-loss"), [{ label: "loss", color: "#2f6fde", points: series(train, "loss") }]);
    drawChart($("#chart-val"), [{ label: "validation loss", color: "#1e8e5a", points: series(val, "loss") }]);
  }
  $("#analyze-run").parentElement.classList.toggle("hidden", m.kind !== "sovqae");
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
  const live = LIVE.includes(job.state);
  // a training finished since (resumed from its model card, say) has nothing left to resume
  const finished = job.kind === "train" && state.models.some((m) => m.name === job.target && m.state === "trained");
  const again = ["interrupted", "failed", "cancelled"].includes(job.state) && job.request && job.request.kind && !finished;
  return el("div", { class: "job", "data-job": job.id, "data-state": job.state },
    el("div", {}, el("span", { class: "title" }, job.title), el("span", { class: `badge ${job.state}` }, job.state)),
    live ? progressLine(job) : null,
    job.error ? el("div", { class: "error" }, job.error) : null,
    el("div", { class: "row" },
      live ? el("button", { class: "danger", onclick: () => cancelJob(job.id) }, job.kind === "train" ? "Stop" : "Cancel") : null,
      again ? el("button", { class: "secondary again", onclick: () => run(async () => {
        const j = await api("POST", `/api/jobs/${job.id}/again`);
        if (j.kind === "train") state.selectedModel = j.target; }) }, job.kind === "train" ? "Resume" : "Run again") : null,
      job.has_log ? el("a", { href: `/api/jobs/${job.id}/log`, target: "_blank" }, "log") : null,
      !live ? el("button", { class: "danger", onclick: () => deleteJob(job) }, "Delete") : null));
}

async function deleteJob(job) {
  if (!confirm(`Delete the job "${job.title}" and its results?`)) return;
  await run(() => api("DELETE", `/api/jobs/${job.id}`));
}

// an action outside a form button: the server's message on failure, the lists refreshed after
async function run(fn) {
  try { await fn(); } catch (e) { toast(e.message); }
  await poll();
}

async function cancelJob(id) {
  await run(() => api("POST", `/api/jobs/${id}/cancel`));
}

// use a result in place: pick it in the enhance or evaluate form and go there
function useResult(ref, tab) {
  const select = tab === "enhance" ? "#enh-video-ref" : "#eval-pred-ref";
  renderMediaSelects();
  $(select).value = ref;
  location.hash = tab;
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

function videoFigure(label, src, name, ref) {
  const use = ref ? [" ", el("button", { class: "secondary use-enhance", onclick: () => useResult(ref, "enhance") }, "enhance"),
    " ", el("button", { class: "secondary use-evaluate", onclick: () => useResult(ref, "evaluate") }, "evaluate")] : [];
  return el("figure", {}, el("figcaption", {}, label, " ", el("a", { href: src, download: name }, "download"), ...use),
    el("video", { src, controls: "", preload: "auto", "data-name": name }));
}

// what a job read: an upload id or a result of another job ("JOB_ID/FILE")
const mediaUrl = (ref) => (ref.includes("/") ? `/api/jobs/${ref.split("/")[0]}/files/${ref.split("/").slice(1).join("/")}`
                                             : `/api/uploads/${ref}/file`);

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
      v.ladtalk ? videoFigure("LaDTalk (Wav2Lip + SOVQAE)", fileUrl(job, v.ladtalk), "ladtalk", `${job.id}/${v.ladtalk}`) : null,
      videoFigure("Wav2Lip only", fileUrl(job, v.wav2lip_only), "wav2lip_only", `${job.id}/${v.wav2lip_only}`)),
      timingsTable(r.timings));
  }
  if (job.kind === "enhance") {
    return el("div", {}, el("div", { class: "videos" },
      videoFigure("input", mediaUrl(job.request.video), "input"),
      videoFigure("repaired by the SOVQAE", fileUrl(job, r.videos.enhanced), "enhanced", `${job.id}/${r.videos.enhanced}`)),
      timingsTable(r.timings));
  }
  if (job.kind === "analyze") return reportView(job, r.report, (rep) => ({ theory: rep.theory }));
  if (job.kind === "evaluate") return reportView(job, r.report, (rep) => { const { files, ...rest } = rep; return rest; });
  if (job.kind === "prepare") return el("div", { class: "facts" }, `identity '${r.identity}' is ready`);
  if (job.kind === "train") return el("div", { class: "facts" }, `model '${r.model}' is trained`);
  if (job.kind === "enhance" || job.kind === "generate") return el("div");
  return el("div");
}

async function renderSlots() {
  for (const slot of $$(".job-slot")) {
    const job = state.jobs.find((j) => j.kind === slot.dataset.kind);  // newest first
    const key = job ? `${job.id}:${job.state}` : "";
    if (job && job.state === "running") {
      const live = JSON.stringify([job.id, job.progress]);
      if (state.slotKeys[slot.dataset.kind] !== live) slot.replaceChildren(el("div", { class: "card" }, jobView(job)));
      state.slotKeys[slot.dataset.kind] = live;
      continue;
    }
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

// redraw what changed since the last poll: lists and selects keep their choices and buttons stay put otherwise
function changed(name, value) {
  const key = JSON.stringify(value);
  if (state.keys[name] === key) return false;
  state.keys[name] = key;
  return true;
}

async function poll() {
  let o;
  try { o = await api("GET", "/api/overview"); } catch (e) { return; }
  state.jobs = o.jobs;
  state.identities = o.identities;
  state.models = o.models;
  state.uploads = o.uploads;
  state.builtin = o.builtin || [];
  if (changed("jobs", [o.jobs, o.models.map((m) => [m.name, m.state])])) renderJobs();
  if (changed("identities", o.identities)) renderIdentities();
  const live = o.jobs.filter((j) => LIVE.includes(j.state)).map((j) => [j.id, j.target, j.request.name]);
  if (changed("models", [o.models, live])) renderModels();
  const done = o.jobs.filter((j) => !LIVE.includes(j.state)).map((j) => [j.id, j.state, j.files]);
  if (changed("files", [o.uploads, done, o.identities])) { renderMediaSelects(); renderFiles(); }
  if (changed("disk", [o.uploads, done, o.identities.map((i) => i.name), o.models.map((m) => [m.name, m.state])])) refreshDisk();
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
// the training form follows the trainer chosen: its presets, its own settings, a name that says what it is
const HINTS = {
  sovqae: "restore-cpu is the CPU restorer (about 30 min on 2 cores at its 2500 steps); choose a lip-sync model " +
          "below so that it also learns that model's own faces. paper-256 / paper-512 are the paper's (a GPU job).",
  lipsync: "Trains the lip-sync expert (syncnet-PRESET, as NAME-expert) and then the Wav2Lip generator with it " +
           "(wav2lip-PRESET, as NAME): 'identity' is the README's CPU lip-sync base (about 15 min on 2 cores).",
  syncnet: "The lip-sync expert alone; the generator's training needs one of the same face size.",
  wav2lip: "The Wav2Lip generator alone, with an expert trained here or uploaded (lipsync_expert.pth).",
};
const DEFAULT_PRESET = { sovqae: "restore-cpu", lipsync: "identity", syncnet: "syncnet-identity", wav2lip: "wav2lip-identity" };

function trainFormFor(component) {
  const presets = (state.info.presets || {})[component] || [];
  fillSelect($("#train-preset"), presets.map((p) => [p, p]));
  if (presets.includes(DEFAULT_PRESET[component]) && !trainFormFor.touched) $("#train-preset").value = DEFAULT_PRESET[component];
  $("#train-hint").textContent = HINTS[component];
  $$(".for-sovqae").forEach((x) => x.classList.toggle("hidden", component !== "sovqae"));
  $$(".for-wav2lip").forEach((x) => x.classList.toggle("hidden", component !== "wav2lip"));
}
$("#train-component").addEventListener("change", () => { trainFormFor.touched = false; trainFormFor($("#train-component").value); });
$("#train-preset").addEventListener("change", () => { trainFormFor.touched = true; });

action($("#train-run"), async () => {
  const identity = $("#train-identity").value, component = $("#train-component").value;
  const body = { kind: "train", component, identity, name: nameOf("#train-name", `${identity}-${component}`),
                 preset: $("#train-preset").value, overrides: [] };
  if ($("#train-steps").value) body.overrides.push(`train.max_steps=${+$("#train-steps").value}`);
  const every = component === "sovqae" ? "val_every" : "eval_every";  // the trainers' own names
  if ($("#train-val-every").value) body.overrides.push(`train.${every}=${+$("#train-val-every").value}`);
  if (component === "sovqae" && $("#train-wav2lip").value) body.wav2lip = $("#train-wav2lip").value;
  if (component === "wav2lip") body.syncnet = $("#train-syncnet").value;
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
    await poll();
    $("#gen-wav2lip").value = up.id;
  } catch (e) { toast(e.message); }
});

// a file chosen in the form is uploaded first; otherwise the file picked in the select (an upload or a result)
async function mediaOf(fileSel, refSel, kind) {
  if ($(fileSel).files[0]) return (await upload($(fileSel).files[0], kind)).id;
  const ref = $(refSel).value;
  if (!ref) throw new Error(`choose a file for "${$(refSel).closest("label").textContent.trim()}" or send a new one`);
  return ref;
}

action($("#gen-run"), async () => {
  const audio = await mediaOf("#gen-audio", "#gen-audio-ref", "audio");
  await api("POST", "/api/jobs", { kind: "generate", identity: $("#gen-identity").value, audio,
                                   wav2lip: $("#gen-wav2lip").value, sovqae: $("#gen-sovqae").value || null,
                                   paste: $("#gen-paste").value, temporal_filter: $("#gen-temporal").checked });
});
action($("#enh-run"), async () => {
  const video = await mediaOf("#enh-video", "#enh-video-ref", "video");
  await api("POST", "/api/jobs", { kind: "enhance", video, sovqae: $("#enh-sovqae").value });
});
action($("#eval-run"), async () => {
  const pred = await mediaOf("#eval-pred", "#eval-pred-ref", "video");
  const gt = await mediaOf("#eval-gt", "#eval-gt-ref", "video");
  await api("POST", "/api/jobs", { kind: "evaluate", pred, gt, align: $("#eval-align").value });
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
        await poll();
        $("#gen-audio-ref").value = up.id;  // kept as an upload: still there after a reload
        $("#gen-record-state").textContent = `recorded ${up.seconds ? up.seconds.toFixed(1) + " s" : ""} (picked above)`;
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
    trainFormFor($("#train-component").value);
  } catch (e) { toast(e.message); }
  await poll();
  setInterval(poll, 1000);
})();
