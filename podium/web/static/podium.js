// Podium's pages: upload, live progress, maps, quick classify. Plain JavaScript, no library.
"use strict";

const csrfToken = () => document.querySelector('meta[name="csrf-token"]').content;

function failureText(xhrOrJson, fallback) {
  try {
    const body = typeof xhrOrJson === "string" ? JSON.parse(xhrOrJson) : xhrOrJson;
    return body.error + (body.hint ? " — " + body.hint : "");
  } catch (_) {
    return fallback;
  }
}

function hidden(path) {
  return path.split("/").some((part) => part.startsWith("."));
}

// A drop zone: Enter or Space opens its file picker; a drop hands the event to onDrop.
function dropZone(zone, picker, onDrop) {
  zone.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") { event.preventDefault(); picker.click(); }
  });
  ["dragenter", "dragover"].forEach((name) => zone.addEventListener(name, (event) => {
    event.preventDefault();
    zone.classList.add("over");
  }));
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    onDrop(event);
  });
}

// --- upload ------------------------------------------------------------------------

function walkEntry(entry, found) {
  // A dropped folder, read recursively; readEntries answers in batches until empty.
  return new Promise((resolve) => {
    if (entry.isFile) {
      entry.file((file) => { found.push({ file, path: entry.fullPath.replace(/^\//, "") }); resolve(); }, () => resolve());
      return;
    }
    const reader = entry.createReader();
    const next = () => reader.readEntries(async (entries) => {
      if (!entries.length) { resolve(); return; }
      for (const child of entries) await walkEntry(child, found);
      next();
    }, () => resolve());
    next();
  });
}

function relativeTo(files, stripFirst) {
  // A chosen or dropped folder's paths are relative to that folder, as `podium submit DIR` makes them.
  return files
    .map(({ file, path }) => ({ file, path: stripFirst ? path.split("/").slice(1).join("/") : path }))
    .filter(({ path }) => path && !hidden(path));
}

function initUpload() {
  const form = document.getElementById("upload-form");
  if (!form) return;
  const filesInput = document.getElementById("upload-input");
  const folderInput = document.getElementById("folder-input");
  const zone = document.getElementById("drop-zone");
  const submit = document.getElementById("upload-submit");
  const chosenText = document.getElementById("chosen");
  const status = document.getElementById("upload-status");
  const bar = document.getElementById("upload-progress");
  const text = document.getElementById("upload-text");
  const error = document.getElementById("upload-error");
  let chosen = [];
  let folderName = "";  // the chosen or dropped folder, as the job's source

  const show = () => {
    const bytes = chosen.reduce((sum, { file }) => sum + file.size, 0);
    chosenText.textContent = chosen.length
      ? `${chosen.length} ${chosen.length === 1 ? "image" : "files"} chosen (${(bytes / 1048576).toFixed(1)} MiB)`
      : "Nothing chosen yet.";
    submit.disabled = !chosen.length;
  };
  filesInput.addEventListener("change", () => {
    chosen = relativeTo([...filesInput.files].map((file) => ({ file, path: file.name })), false);
    folderName = "";
    show();
  });
  folderInput.addEventListener("change", () => {
    const files = [...folderInput.files];
    folderName = files.length ? (files[0].webkitRelativePath || "").split("/")[0] : "";
    chosen = relativeTo(files.map((file) => ({ file, path: file.webkitRelativePath || file.name })), true);
    show();
  });
  dropZone(zone, filesInput, async (event) => {
    const entries = [...event.dataTransfer.items].map((item) => item.webkitGetAsEntry && item.webkitGetAsEntry()).filter(Boolean);
    const found = [];
    for (const entry of entries) await walkEntry(entry, found);
    const oneFolder = entries.length === 1 && entries[0].isDirectory;
    chosen = relativeTo(found, oneFolder);
    folderName = oneFolder ? entries[0].name : "";
    show();
  });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!chosen.length) return;
    error.hidden = true;
    submit.disabled = true;
    status.hidden = false;
    // One body: a header line, then the file's bytes, for every file. The Blob refers to
    // the files on disk: the browser reads them as it sends, nothing is held in memory.
    const encoder = new TextEncoder();
    const parts = [];
    for (const { file, path } of chosen) {
      parts.push(encoder.encode(JSON.stringify({ path, size: file.size }) + "\n"), file);
    }
    const body = new Blob(parts, { type: "application/octet-stream" });
    const params = new URLSearchParams({
      name: document.getElementById("job-name").value,
      top_k: document.getElementById("top-k").value,
      model: document.getElementById("model").value,
      explain: document.getElementById("explain").checked ? "1" : "",
      source: folderName,
    });
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/uploads?" + params.toString());
    xhr.setRequestHeader("X-CSRF-Token", csrfToken());
    xhr.upload.addEventListener("progress", (progress) => {
      if (!progress.lengthComputable) return;
      bar.value = (100 * progress.loaded) / progress.total;
      text.textContent = `uploading ${(progress.loaded / 1048576).toFixed(1)} of ${(progress.total / 1048576).toFixed(1)} MiB`;
    });
    xhr.upload.addEventListener("load", () => { text.textContent = "uploaded; the gateway is taking the last files…"; });
    xhr.addEventListener("load", () => {
      if (xhr.status === 200) {
        window.location.assign(JSON.parse(xhr.responseText).url);
        return;
      }
      if (xhr.status === 401) { window.location.assign("/login?next=/"); return; }
      error.textContent = failureText(xhr.responseText, `the upload failed (HTTP ${xhr.status})`);
      error.hidden = false;
      submit.disabled = false;
    });
    xhr.addEventListener("error", () => {
      error.textContent = "the upload broke off: is `podium web` still running?";
      error.hidden = false;
      submit.disabled = false;
    });
    xhr.send(body);
  });
}

// --- a job's live progress ----------------------------------------------------------

function numbersText(job) {
  let text = `${job.done} / ${job.total} images · ${job.succeeded} ok · ${job.failed} failed`;
  if (job.cached) text += ` · ${job.cached} cached`;
  text += ` · ${job.rate.toFixed(1)} img/s`;
  if (job.eta) text += ` · about ${job.eta} left`;
  return text;
}

function initJob() {
  const page = document.getElementById("job");
  if (!page || page.dataset.terminal) return;
  const state = document.getElementById("job-state");
  const bar = document.getElementById("job-progress");
  const numbers = document.getElementById("job-numbers");
  const duration = document.getElementById("job-duration");
  const source = new EventSource(`/jobs/${page.dataset.jobId}/events`);
  source.addEventListener("message", (event) => {
    const job = JSON.parse(event.data);
    if (job.terminal) {
      // The finished page carries every result: load it rather than patch this one.
      source.close();
      window.location.reload();
      return;
    }
    state.textContent = job.state;
    state.className = `state state-${job.state}`;
    bar.max = Math.max(job.total, 1);
    bar.value = job.done;
    numbers.textContent = numbersText(job);
    duration.textContent = job.duration;
  });
}

// --- the jobs list ------------------------------------------------------------------

function initJobs() {
  const table = document.getElementById("jobs-table");
  if (!table) return;
  const running = () => [...table.querySelectorAll("tr[data-job-id]")].some((row) => !row.dataset.terminal);
  const refresh = async () => {
    if (!running()) return;
    try {
      const answer = await fetch("/api/jobs", { headers: { Accept: "application/json" } });
      if (answer.ok) {
        for (const job of (await answer.json()).jobs) {
          const row = table.querySelector(`tr[data-job-id="${job.id}"]`);
          if (!row) continue;
          const field = (name) => row.querySelector(`[data-field="${name}"]`);
          field("state").textContent = job.state;
          field("state").className = `state state-${job.state}`;
          field("progress").max = Math.max(job.total, 1);
          field("progress").value = job.done;
          field("done").textContent = `${job.done} / ${job.total}`;
          field("succeeded").textContent = job.succeeded;
          field("failed").textContent = job.failed;
          field("rate").textContent = job.rate.toFixed(1);
          field("duration").textContent = job.duration;
          if (job.terminal) row.dataset.terminal = "1";
        }
      }
    } catch (_) { /* the next tick tries again */ }
    setTimeout(refresh, 2000);
  };
  setTimeout(refresh, 2000);
}

// --- class activation maps over thumbnails ------------------------------------------

// Stops of matplotlib's "inferno", the colour map of `podium results --heatmaps`.
const INFERNO = [[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66], [245, 125, 21], [250, 193, 39], [252, 255, 164]];

function inferno(value) {
  const scaled = Math.min(Math.max(value, 0), 1) * (INFERNO.length - 1);
  const low = Math.floor(scaled), high = Math.min(low + 1, INFERNO.length - 1), t = scaled - low;
  return INFERNO[low].map((c, i) => Math.round(c + (INFERNO[high][i] - c) * t));
}

function drawMaps() {
  document.querySelectorAll("canvas.cam[data-cam]").forEach((canvas) => {
    const hex = canvas.dataset.cam;
    const cells = new ImageData(canvas.width, canvas.height);
    for (let i = 0; i < canvas.width * canvas.height; i++) {
      const value = parseInt(hex.substr(2 * i, 2), 16) / 255;
      const [r, g, b] = inferno(value);
      cells.data.set([r, g, b, value < 0.03 ? 0 : Math.round(255 * 0.7 * Math.sqrt(value))], 4 * i);
    }
    canvas.getContext("2d").putImageData(cells, 0, 0);
  });
  const toggle = document.getElementById("show-maps");
  if (toggle) {
    const apply = () => document.body.classList.toggle("maps-off", !toggle.checked);
    toggle.addEventListener("change", apply);
    apply();
  }
}

// --- quick classify -----------------------------------------------------------------

function initClassify() {
  const input = document.getElementById("classify-input");
  if (!input) return;
  const zone = document.getElementById("classify-zone");
  const result = document.getElementById("classify-result");
  const preview = document.getElementById("classify-preview");
  const name = document.getElementById("classify-name");
  const top = document.getElementById("classify-top");
  const error = document.getElementById("classify-error");
  const classify = async (file) => {
    result.hidden = false;
    preview.src = URL.createObjectURL(file);
    name.textContent = file.name;
    top.replaceChildren();
    error.hidden = true;
    const form = new FormData();
    form.append("image", file);
    const answer = await fetch("/api/classify", { method: "POST", body: form, headers: { "X-CSRF-Token": csrfToken() } });
    const body = await answer.json().catch(() => ({ error: `HTTP ${answer.status}` }));
    if (!answer.ok || body.status === "error") {
      error.textContent = answer.ok ? body.error : failureText(body, `HTTP ${answer.status}`);
      error.hidden = false;
      return;
    }
    for (const prediction of body.top_k) {
      const item = document.createElement("li");
      const label = document.createElement("span");
      label.className = "label";
      label.textContent = prediction.label;
      const meter = document.createElement("meter");
      meter.min = 0; meter.max = 1; meter.value = prediction.probability;
      const p = document.createElement("span");
      p.className = "p";
      p.textContent = `${(100 * prediction.probability).toFixed(1)}%`;
      item.append(label, meter, p);
      top.append(item);
    }
  };
  input.addEventListener("change", () => input.files.length && classify(input.files[0]));
  dropZone(zone, input, (event) => {
    if (event.dataTransfer.files.length) classify(event.dataTransfer.files[0]);
  });
}

document.addEventListener("submit", (event) => {
  const message = event.target.dataset && event.target.dataset.confirm;
  if (message && !window.confirm(message)) event.preventDefault();
});

document.addEventListener("DOMContentLoaded", () => {
  initUpload();
  initJob();
  initJobs();
  drawMaps();
  initClassify();
});
