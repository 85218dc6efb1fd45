/* Squeezer's web page: the native API v1 from the browser (docs/api.md), nothing private.
   Upload (XMLHttpRequest, for upload progress) -> POST /v1/jobs -> long polling
   GET /v1/jobs/{id}?wait= -> result, preview (GET /v1/files/{id}/preview), download
   (the job's signed download_url), DELETE /v1/files/{id}. */
(function () {
  "use strict";

  const KEY_STORAGE = "squeezer.apiKey";
  const CONCURRENT = 2;
  const POLL_WAIT = 3; // seconds per long poll: short enough to show progress while running
  const PREVIEW_WIDTH = 800;
  /* The levels and what each means come from GET /v1/options (the options model);
     this list is only the fallback for a server too old to answer it. */
  const FALLBACK_LEVELS = { levels: ["lossless", "low", "medium", "high", "extreme"],
    default_level: "medium", formats: [] };
  const STEP_NAMES = {
    images: "images", structure: "file structure", fonts: "fonts", metadata: "metadata",
    streams: "streams", dedup: "duplicates",
  };

  const $ = (sel, root) => (root || document).querySelector(sel);
  const state = { key: null, open: false, limits: null, items: [], queue: [], running: 0 };
  let uid = 0;

  /* ---------- formatting ---------- */

  /** Sizes in binary units with the usual short names (1 KB = 1024 B), as file managers show. */
  function fmtBytes(n) {
    if (n === null || n === undefined) return "?";
    if (n < 1024) return n + " B";
    const units = ["KB", "MB", "GB", "TB"];
    let v = n / 1024, i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return (v >= 100 ? v.toFixed(0) : v.toFixed(1)) + " " + units[i];
  }

  function fmtPercentSaved(before, after) {
    if (!before) return "";
    if (after >= before) return "no change";
    const pct = (1 - after / before) * 100;
    if (pct < 0.5) return "−<1 %";
    return "−" + (pct >= 99.5 ? pct.toFixed(1) : Math.round(pct)) + " %";
  }

  function fmtDuration(seconds) {
    seconds = Math.max(0, Math.round(seconds));
    if (seconds < 90) return seconds + " s";
    const minutes = Math.round(seconds / 60);
    if (minutes < 90) return minutes + " min";
    const h = Math.floor(minutes / 60), m = minutes % 60;
    return h + " h" + (m ? " " + m + " min" : "");
  }

  function fmtClock(date) {
    return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  /* ---------- the API ---------- */

  function authHeaders(extra) {
    const h = Object.assign({}, extra || {});
    if (state.key) h.Authorization = "Bearer " + state.key;
    return h;
  }

  async function api(method, path, opts) {
    opts = opts || {};
    const init = { method, headers: authHeaders(opts.headers), cache: "no-store" };
    if (opts.json !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(opts.json);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (e) {
      return { status: 0, data: null, headers: new Headers() };
    }
    let data = null;
    const type = response.headers.get("content-type") || "";
    if (opts.blob && response.ok) data = await response.blob();
    else if (type.includes("json")) data = await response.json().catch(() => null);
    return { status: response.status, data, headers: response.headers };
  }

  /** Image types a browser shows by itself (the preview uses the file; others get a note). */
  const BROWSER_IMAGES = new Set(["image/jpeg", "image/png", "image/gif", "image/webp", "image/avif",
    "image/bmp", "image/svg+xml"]);

  /** Plain words for an API error (status + uniform error body), for a file. */
  function plainError(status, body, item) {
    const code = (body && body.code) || "";
    const limit = state.limits ? fmtBytes(state.limits.max_upload_bytes) : null;
    const isImage = item && item.file.type.startsWith("image/");
    switch (status) {
      case 0: return "Could not reach the server. Check your connection and try again.";
      case 401: return "The server did not accept the API key (unknown or revoked). Use “Change key” at the top.";
      case 404: return "The server no longer knows this file.";
      case 410: return "This file has expired or was deleted on the server.";
      case 413: return "This file is too large for this server" + (limit ? " (the limit is " + limit + ")." : ".");
      case 415:
        return (isImage
          ? "This image format is not supported"
          : "This file is neither a PDF nor a supported image") +
          ", so it was not uploaded. Squeezer compresses PDF, JPEG, PNG, GIF, WebP, AVIF, HEIC, TIFF, BMP and SVG files.";
      case 422:
        if (body && Array.isArray(body.errors) && body.errors.length) {
          return "Some settings are not valid: " +
            body.errors.map((e) => e.field.replace(/^options\./, "") + ": " + e.message).join("; ") + ".";
        }
        break;
      case 503: return "The server is temporarily unavailable. Try again in a moment.";
    }
    if (status >= 500) {
      return "Something went wrong on the server" + (body && body.id ? " (request id " + body.id + ")." : ".");
    }
    return (body && body.message) ? capitalize(body.message) + (code ? " (" + code + ")" : "") : "Request failed (HTTP " + status + ").";
  }

  /** Plain words for a failed job's error {code, message}. */
  function jobError(error, item) {
    const m = {
      not_a_pdf: plainError(415, null, item),
      unsupported_format: plainError(415, null, item),
      pdf_invalid: "This PDF is damaged in a way that could not be repaired, so it was not compressed.",
      input_too_large: plainError(413, null, item),
      too_many_pages: "This PDF has more pages than the server allows.",
      image_too_large: "An image in this PDF is larger than the server allows.",
      decompression_limit: "This PDF expands to more data than the server allows.",
      timeout: "Compressing took longer than the server allows.",
      memory_limit: "This file needs more memory than the server allows.",
      processing_crashed: "The compressor crashed on this file; it was not compressed.",
      input_gone: plainError(410, null, item),
      cancelled: "The job was cancelled.",
    };
    return m[error.code] || capitalize(error.message || "compression failed") + " (" + error.code + ")";
  }

  function capitalize(s) { return s ? s.charAt(0).toUpperCase() + s.slice(1) : s; }

  function retryAfter(headers) {
    const v = parseInt(headers.get("retry-after") || "", 10);
    return Number.isFinite(v) && v >= 0 ? Math.min(v, 3600) : 5;
  }

  /* ---------- options ---------- */

  async function loadOptions() {
    try {
      const r = await fetch("/v1/options", { cache: "no-store" });
      if (r.ok) return await r.json();
    } catch (e) { /* an older server */ }
    return FALLBACK_LEVELS;
  }

  function buildPresets(described) {
    const box = $("#presets");
    const saved = localStorage.getItem("squeezer.preset") || described.default_level;
    const pdf = described.formats.find((f) => f.name === "pdf");
    for (const value of described.levels) {
      const label = capitalize(value) + (value === described.default_level ? " (recommended)" : "");
      const help = pdf ? pdf.levels[value] : "";
      const id = "preset-" + value;
      const wrap = document.createElement("div");
      wrap.className = "preset";
      const input = document.createElement("input");
      Object.assign(input, { type: "radio", name: "preset", value, id, checked: value === saved });
      input.setAttribute("aria-describedby", id + "-help");
      input.addEventListener("change", () => localStorage.setItem("squeezer.preset", value));
      const lab = document.createElement("label");
      lab.htmlFor = id;
      const title = document.createElement("span");
      title.className = "preset-name";
      title.textContent = label;
      const desc = document.createElement("span");
      desc.className = "preset-help";
      desc.id = id + "-help";
      desc.textContent = help;
      lab.append(title, desc);
      wrap.append(input, lab);
      box.append(wrap);
    }
  }

  function currentOptions() {
    const opts = {};
    const pdf = {};
    const level = document.querySelector('input[name="preset"]:checked');
    opts.level = level ? level.value : "medium";
    const dpi = $("#opt-dpi").value.trim();
    if (dpi) pdf.dpi = Number(dpi);
    const quality = $("#opt-quality").value.trim();
    if (quality) opts.quality = Number(quality);
    const target = $("#opt-target").value.trim();
    if (target) opts.target_size = target;
    if ($("#opt-gray").checked) pdf.color_model = "gray";
    if ($("#opt-metadata").checked) opts.remove_metadata = true;
    if ($("#opt-annotations").checked) pdf.remove_annotations = true;
    if (Object.keys(pdf).length) opts.pdf = pdf;
    return opts;
  }

  /* ---------- one file ---------- */

  class Item {
    constructor(file) {
      this.file = file;
      this.id = "f" + (++uid);
      this.options = currentOptions();
      this.password = null;
      this.upload = null; // the stored upload (POST /v1/files)
      this.job = null;
      this.deleted = false;
      this.previewUrls = [];
      const li = $("#filetpl").content.firstElementChild.cloneNode(true);
      this.el = li;
      li.id = this.id;
      $(".name", li).textContent = file.name;
      $(".fsize", li).textContent = fmtBytes(file.size);
      const bar = $(".bar", li);
      bar.id = this.id + "-bar";
      bar.setAttribute("aria-label", "Progress of " + file.name);
      const pw = $(".pwinput", li);
      pw.id = this.id + "-pw";
      $(".pwlabel", li).htmlFor = pw.id;
      $(".password", li).addEventListener("submit", (e) => { e.preventDefault(); this.unlock(); });
      $(".delete", li).addEventListener("click", () => this.remove());
      $(".split", li).addEventListener("input", (e) => this.split(e.target.value));
      $(".layout-toggle", li).addEventListener("click", (e) => this.toggleLayout(e.target));
      this.setState("waiting", "Waiting…");
    }

    setState(name, status) {
      this.state = name;
      this.el.dataset.state = name;
      if (status !== undefined) $(".status", this.el).textContent = status;
      renderTotals();
    }

    progress(fraction) {
      const bar = $(".bar", this.el);
      if (fraction === null) { bar.removeAttribute("value"); return; }
      bar.value = Math.round(Math.max(0, Math.min(1, fraction)) * 100);
    }

    fail(message) {
      const box = $(".error", this.el);
      box.textContent = message;
      box.hidden = false;
      $(".bar", this.el).hidden = true;
      this.setState("failed", "");
    }

    clearError() {
      $(".error", this.el).hidden = true;
      $(".bar", this.el).hidden = false;
    }

    async waitRetry(headers) {
      const seconds = retryAfter(headers);
      for (let left = seconds; left > 0; left--) {
        this.setState(this.state, "The server is busy (rate limit reached). Retrying in " + left + " s…");
        await sleep(1000);
      }
    }

    async run() {
      try {
        if (!this.upload && !(await this.doUpload())) return;
        await this.compress();
      } catch (e) {
        console.error(e);
        this.fail("Something went wrong in the page: " + e.message);
      }
    }

    doUpload() {
      this.setState("uploading", "Uploading… 0 %");
      this.progress(0);
      return new Promise((resolve) => {
        const xhr = new XMLHttpRequest();
        xhr.open("POST", "/v1/files");
        if (state.key) xhr.setRequestHeader("Authorization", "Bearer " + state.key);
        xhr.upload.addEventListener("progress", (e) => {
          if (!e.lengthComputable) return;
          this.progress(e.loaded / e.total);
          $(".status", this.el).textContent = "Uploading… " + Math.round((e.loaded / e.total) * 100) + " %";
        });
        xhr.addEventListener("load", async () => {
          let body = null;
          try { body = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
          if (xhr.status === 201 && body) {
            this.upload = body;
            resolve(true);
          } else if (xhr.status === 429) {
            const headers = new Headers({ "retry-after": xhr.getResponseHeader("Retry-After") || "" });
            await this.waitRetry(headers);
            resolve(await this.doUpload());
          } else {
            this.fail(plainError(xhr.status, body, this));
            if (xhr.status === 401) showKeyProblem();
            resolve(false);
          }
        });
        xhr.addEventListener("error", () => { this.fail(plainError(0, null, this)); resolve(false); });
        const form = new FormData();
        form.append("file", this.file, this.file.name);
        xhr.send(form);
      });
    }

    async compress() {
      this.clearError();
      this.setState("queued", "Waiting for a worker…");
      this.progress(null);
      const options = Object.assign({}, this.options);
      if (this.password !== null) options.password = this.password;
      let r;
      for (;;) {
        r = await api("POST", "/v1/jobs", { json: { input: { file_id: this.upload.id }, options } });
        if (r.status !== 429) break;
        await this.waitRetry(r.headers);
      }
      if (r.status !== 201 && r.status !== 200) {
        this.fail(plainError(r.status, r.data, this));
        if (r.status === 401) showKeyProblem();
        return;
      }
      let job = r.data;
      this.el.dataset.jobId = job.id;
      while (!["succeeded", "failed", "cancelled"].includes(job.state)) {
        this.showJob(job);
        const next = await api("GET", "/v1/jobs/" + job.id + "?wait=" + POLL_WAIT);
        if (next.status === 429) { await this.waitRetry(next.headers); continue; }
        if (next.status !== 200) { this.fail(plainError(next.status, next.data, this)); return; }
        job = next.data;
      }
      this.job = job;
      if (job.state === "succeeded") this.showResult(job);
      else if (job.error && (job.error.code === "password_required" || job.error.code === "invalid_password")) this.askPassword(job.error.code);
      else this.fail(jobError(job.error || { code: job.state, message: job.state }, this));
    }

    showJob(job) {
      if (job.state === "queued") {
        this.setState("queued", "Waiting for a worker…");
        this.progress(null);
      } else {
        const pct = Math.round((job.progress || 0) * 100);
        this.setState("running", "Compressing… " + pct + " %");
        this.progress(job.progress || 0);
      }
    }

    askPassword(code) {
      const form = $(".password", this.el);
      this.fail(code === "invalid_password"
        ? "That password did not open the PDF. Check it and try again."
        : "This PDF is protected with a password. Enter it to compress the file.");
      this.setState("password", "");
      form.hidden = false;
      const input = $(".pwinput", form);
      input.value = "";
      input.setAttribute("aria-invalid", code === "invalid_password" ? "true" : "false");
      input.focus();
    }

    unlock() {
      const input = $(".pwinput", this.el);
      if (!input.value) { input.focus(); return; }
      this.password = input.value;
      $(".password", this.el).hidden = true;
      enqueue(this);
    }

    showResult(job) {
      const res = job.result;
      const before = res.input ? res.input.size : this.upload.size;
      const after = res.output.size;
      const el = this.el;
      $(".bar", el).hidden = true;
      $(".status", el).textContent = res.original_kept
        ? "Done: the original was kept, it was already optimal."
        : "Done: " + fmtBytes(before) + " to " + fmtBytes(after) + ", " + fmtPercentSaved(before, after).replace("−", "minus ") + ".";
      this.setState("done");
      const sizes = $(".sizes", el);
      sizes.dataset.inputSize = before;
      sizes.dataset.outputSize = after;
      $(".before", el).textContent = fmtBytes(before);
      $(".after", el).textContent = fmtBytes(after);
      $(".saved", el).textContent = fmtPercentSaved(before, after);
      const report = $(".report", el);
      report.replaceChildren(...reportLines(res).map(([text, cls]) => {
        const li = document.createElement("li");
        li.textContent = text;
        if (cls) li.className = cls;
        return li;
      }));
      const link = $(".download", el);
      link.href = res.download_url;
      link.setAttribute("download", res.output.name);
      link.setAttribute("aria-label", "Download " + res.output.name);
      link.hidden = false;
      const del = $(".delete", el);
      del.hidden = false;
      del.setAttribute("aria-label", "Delete " + this.file.name + " from the server now");
      $(".result", el).hidden = false;
      this.expiresAt = res.expires_at ? new Date(res.expires_at) : null;
      this.tick();
      this.loadPreview(res);
      renderTotals();
    }

    tick() {
      const p = $(".expires", this.el);
      if (this.deleted) { p.textContent = "Deleted from the server."; return; }
      if (!this.expiresAt) { p.textContent = ""; return; }
      const left = (this.expiresAt - Date.now()) / 1000;
      if (left <= 0) {
        p.textContent = "Expired: the server has deleted this result.";
        $(".download", this.el).hidden = true;
      } else {
        p.textContent = "Kept on the server until " + fmtClock(this.expiresAt) +
          " (" + fmtDuration(left) + " from now), then deleted automatically.";
      }
    }

    async loadPreview(res) {
      const el = this.el;
      const headers = this.password !== null ? { "X-Squeezer-Password": this.password } : {};
      const width = Math.min(1600, Math.round(PREVIEW_WIDTH * Math.min(2, window.devicePixelRatio || 1)));
      const ids = [res.input && res.input.file_id, res.output.file_id];
      // a PDF's first page is rendered by the server; an image the browser can show is shown as is
      const isImage = (f) => f && (f.mime || "").startsWith("image/");
      const direct = (f) => f && BROWSER_IMAGES.has(f.mime);
      if ((isImage(res.input) || isImage(res.output)) && !(direct(res.input) && direct(res.output))) {
        const note = $(".preview-note", el);
        note.textContent = "No preview: this browser cannot show " + (direct(res.input) ? res.output.mime : res.input.mime) + " images.";
        note.hidden = false;
        return;
      }
      const fetchPreview = async (id) => {
        const file = [res.input, res.output].find((f) => f && f.file_id === id);
        const path = isImage(file) ? "/v1/files/" + id + "/content"
          : "/v1/files/" + id + "/preview?page=1&width=" + width;
        for (let attempt = 0; ; attempt++) {
          const r = await api("GET", path, { headers, blob: true });
          if (r.status !== 429 || attempt >= 3) return r;
          await sleep(retryAfter(r.headers) * 1000);
        }
      };
      const got = await Promise.all(ids.map((id) => id ? fetchPreview(id) : Promise.resolve({ status: 404, data: null })));
      const note = $(".preview-note", el);
      if (got.some((r) => r.status !== 200)) {
        const bad = got.find((r) => r.status !== 200);
        note.textContent = "No preview: " + plainError(bad.status, bad.data, this).replace(/\.$/, "").toLowerCase() + ".";
        note.hidden = false;
        return;
      }
      const [imgBefore, imgAfter] = [$(".img-before", el), $(".img-after", el)];
      this.previewUrls = got.map((r) => URL.createObjectURL(r.data));
      imgBefore.src = this.previewUrls[0];
      imgAfter.src = this.previewUrls[1];
      const image = isImage(res.input);
      $(".compare-title", el).textContent = image ? "Preview" : "Page 1";
      imgBefore.alt = (image ? "" : "First page of ") + this.file.name + " before compression";
      imgAfter.alt = (image ? "The image" : "First page") + " after compression";
      $(".compare", el).hidden = false;
      this.split(50);
    }

    split(value) {
      $(".frames", this.el).style.setProperty("--split", value + "%");
    }

    toggleLayout(button) {
      const on = button.getAttribute("aria-pressed") !== "true";
      button.setAttribute("aria-pressed", on ? "true" : "false");
      button.textContent = on ? "Overlay with slider" : "Side by side";
      $(".compare", this.el).classList.toggle("side", on);
      $(".slider", this.el).hidden = on;
    }

    async remove() {
      const del = $(".delete", this.el);
      del.disabled = true;
      const ids = [];
      if (this.job && this.job.result) ids.push(this.job.result.output.file_id);
      if (this.upload) ids.push(this.upload.id);
      for (const id of ids) {
        const r = await api("DELETE", "/v1/files/" + id);
        if (r.status !== 204 && r.status !== 410 && r.status !== 404) {
          del.disabled = false;
          $(".status", this.el).textContent = "Could not delete: " + plainError(r.status, r.data, this);
          return;
        }
      }
      this.deleted = true;
      del.hidden = true;
      $(".download", this.el).hidden = true;
      $(".compare", this.el).hidden = true;
      this.previewUrls.forEach((u) => URL.revokeObjectURL(u));
      this.tick();
      $(".status", this.el).textContent = "Deleted from the server.";
      this.setState("deleted");
      $("#filestitle").focus();
    }
  }

  function reportLines(res) {
    const r = res.report || {};
    const lines = [];
    if (res.original_kept || r.original_kept) {
      lines.push(["Original kept: it was already optimal, so a compressed copy would not have been smaller.", "note"]);
    }
    if (r.kind === "image") {
      if (r.format_in && r.format_out && r.format_in !== r.format_out) {
        lines.push(["Converted from " + r.format_in.toUpperCase() + " to " + r.format_out.toUpperCase() + ".", ""]);
      }
      const acts = (r.actions || []).filter((a) => !/^metadata/.test(a)).slice(0, 3);
      if (acts.length) lines.push([capitalize(acts.join("; ")) + ".", ""]);
      if ((r.metadata_removed || []).length) lines.push(["Metadata removed: " + r.metadata_removed.join(", ") + ".", "muted"]);
      if (r.width && r.height) {
        lines.push([r.width + " × " + r.height + " px" + (r.frames > 1 ? ", " + r.frames + " frames" : "") +
          (r.ssim ? ", similarity " + r.ssim.toFixed(3) + " (SSIM)" : "") + ".", "muted"]);
      }
    }
    const img = r.images || {};
    const done = [];
    if (img.recompressed) done.push(img.recompressed + " of " + img.seen + " image" + (img.seen === 1 ? "" : "s") + " recompressed");
    if (img.downsampled) done.push(img.downsampled + " downsampled");
    if (img.to_gray) done.push(img.to_gray + " made grayscale");
    if (img.deduplicated) done.push(img.deduplicated + " duplicate image" + (img.deduplicated === 1 ? "" : "s") + " merged");
    if (r.fonts_deduplicated) done.push(r.fonts_deduplicated + " duplicate font" + (r.fonts_deduplicated === 1 ? "" : "s") + " merged");
    if (done.length) lines.push([capitalize(done.join(", ")) + ".", ""]);
    const steps = Object.entries(r.steps || {}).filter(([, saved]) => saved > 0)
      .sort((a, b) => b[1] - a[1]).slice(0, 4)
      .map(([name, saved]) => (STEP_NAMES[name] || name.replace(/_/g, " ")) + " " + fmtBytes(saved));
    if (steps.length && !res.original_kept) lines.push(["Saved by: " + steps.join(", ") + ".", ""]);
    if ((r.requested_changes || []).length) lines.push(["Removed or changed as asked: " + r.requested_changes.join(", ") + ".", ""]);
    if (r.target_size) {
      lines.push([r.target_reached
        ? "Target of " + fmtBytes(r.target_size) + " reached."
        : "Target of " + fmtBytes(r.target_size) + " not reached: this is as small as it gets within the quality limits.",
      r.target_reached ? "" : "warn"]);
    }
    if (r.pages) lines.push([r.pages + " page" + (r.pages === 1 ? "" : "s") + ", checked: text and page count unchanged.", "muted"]);
    for (const w of r.warnings || []) {
      if (res.original_kept && /kept it\W*$/i.test(w)) continue; // said above in plain words
      lines.push(["Warning: " + w, "warn"]);
    }
    return lines;
  }

  /* ---------- the list ---------- */

  function enqueue(item) {
    item.setState(item.upload ? "queued" : "waiting", item.upload ? "Waiting…" : "Waiting to upload…");
    state.queue.push(item);
    pump();
  }

  function pump() {
    while (state.running < CONCURRENT && state.queue.length) {
      const item = state.queue.shift();
      state.running++;
      item.run().finally(() => { state.running--; pump(); });
    }
  }

  function addFiles(files) {
    const list = $("#files");
    for (const file of files) {
      const item = new Item(file);
      state.items.push(item);
      list.append(item.el);
      enqueue(item);
    }
    renderTotals();
  }

  function renderTotals() {
    const done = state.items.filter((i) => i.state === "done");
    const busy = state.items.filter((i) => ["waiting", "uploading", "queued", "running"].includes(i.state));
    $("#empty").hidden = state.items.length > 0;
    $("#zipall").disabled = done.length === 0;
    $("#clear").disabled = state.items.length === 0 || busy.length > 0;
    let text = "";
    if (done.length) {
      const before = done.reduce((s, i) => s + (i.job.result.input ? i.job.result.input.size : i.upload.size), 0);
      const after = done.reduce((s, i) => s + i.job.result.output.size, 0);
      text = done.length + " done: " + fmtBytes(before) + " → " + fmtBytes(after) + " (" + fmtPercentSaved(before, after) + ")";
    }
    if (busy.length) text += (text ? "; " : "") + busy.length + " in progress";
    const totals = $("#totals");
    if (totals.textContent !== text) totals.textContent = text;
  }

  async function downloadZip() {
    const done = state.items.filter((i) => i.state === "done");
    const button = $("#zipall"), status = $("#zipstatus");
    button.disabled = true;
    const entries = [], used = new Set();
    try {
      for (let n = 0; n < done.length; n++) {
        status.textContent = "Preparing ZIP: " + (n + 1) + " of " + done.length + "…";
        const res = done[n].job.result;
        const response = await fetch(res.download_url, { cache: "no-store" });
        if (!response.ok) throw new Error(done[n].file.name + ": HTTP " + response.status);
        let name = res.output.name, k = 2;
        while (used.has(name)) name = res.output.name.replace(/(\.[^.]*)?$/, " (" + (k++) + ")$1");
        used.add(name);
        entries.push({ name, data: new Uint8Array(await response.arrayBuffer()) });
      }
      const blob = window.SqueezerZip.build(entries);
      const a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = "squeezer-" + new Date().toISOString().slice(0, 10) + ".zip";
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 60000);
      status.textContent = "ZIP with " + entries.length + " file" + (entries.length === 1 ? "" : "s") + " ready (" + fmtBytes(blob.size) + ").";
    } catch (e) {
      status.textContent = "Could not build the ZIP: " + e.message;
    } finally {
      renderTotals();
    }
  }

  function clearList() {
    for (const item of state.items) item.previewUrls.forEach((u) => URL.revokeObjectURL(u));
    state.items = [];
    $("#files").replaceChildren();
    $("#zipstatus").textContent = "";
    renderTotals();
  }

  /* ---------- drag and drop ---------- */

  function setupDrop() {
    const drop = $("#drop"), input = $("#fileinput");
    $("#pick").addEventListener("click", () => input.click());
    input.addEventListener("change", () => { addFiles(Array.from(input.files)); input.value = ""; });
    let depth = 0;
    const over = (on) => drop.classList.toggle("over", on);
    document.addEventListener("dragenter", (e) => { if (hasFiles(e)) { depth++; over(true); } });
    document.addEventListener("dragleave", () => { depth = Math.max(0, depth - 1); if (!depth) over(false); });
    document.addEventListener("dragover", (e) => { if (hasFiles(e)) e.preventDefault(); });
    document.addEventListener("drop", (e) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      depth = 0;
      over(false);
      if ($("#app").hidden) return;
      addFiles(Array.from(e.dataTransfer.files));
    });
  }

  function hasFiles(e) {
    return e.dataTransfer && Array.from(e.dataTransfer.types || []).includes("Files");
  }

  /* ---------- the key ---------- */

  async function checkKey(key) {
    const saved = state.key;
    state.key = key;
    const r = await api("GET", "/v1/me");
    if (r.status !== 200) state.key = saved;
    return r;
  }

  function showApp(me) {
    state.limits = me.limits || null;
    $("#keypanel").hidden = true;
    $("#app").hidden = false;
    $("#keystatus").hidden = false;
    $("#changekey").hidden = state.open;
    $("#keylabel").textContent = state.open ? "Open mode: no key needed on this network"
      : "Key " + (me.prefix || state.key.slice(0, 10)) + "…" + (me.name ? " · " + me.name : "");
    if (state.limits) {
      $("#limits").textContent = "Up to " + fmtBytes(state.limits.max_upload_bytes) + " per file. " +
        "Files are deleted from the server after " + fmtDuration(state.limits.file_ttl_seconds) + ".";
    }
  }

  function showKeyPanel(message) {
    $("#booting").hidden = true;
    $("#keypanel").hidden = false;
    $("#app").hidden = true;
    $("#keystatus").hidden = true;
    const err = $("#keyerror");
    err.hidden = !message;
    err.textContent = message || "";
    const input = $("#keyinput");
    input.setAttribute("aria-invalid", message ? "true" : "false");
    input.focus();
  }

  function showKeyProblem() {
    if (state.open) return;
    const status = $("#keylabel");
    status.textContent = "The key was not accepted";
    status.classList.add("bad");
  }

  function keyMessage(r) {
    if (r.status === 401) return "This key was not accepted. Check that you copied all of it and that it has not been revoked.";
    if (r.status === 429) return "Too many requests with this key; try again in " + retryAfter(r.headers) + " s.";
    return plainError(r.status, r.data, null);
  }

  function setupKeyForm() {
    $("#keyform").addEventListener("submit", async (e) => {
      e.preventDefault();
      const key = $("#keyinput").value.trim();
      if (!key) { showKeyPanel("Paste an API key first."); return; }
      const button = $("#keysave");
      button.disabled = true;
      const r = await checkKey(key);
      button.disabled = false;
      if (r.status === 200) {
        localStorage.setItem(KEY_STORAGE, key);
        $("#keyinput").value = "";
        showApp(r.data);
        $("#pick").focus();
      } else {
        showKeyPanel(keyMessage(r));
      }
    });
    $("#changekey").addEventListener("click", () => {
      $("#keylabel").classList.remove("bad");
      showKeyPanel("");
    });
  }

  /* ---------- start ---------- */

  function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

  async function start() {
    buildPresets(await loadOptions());
    setupDrop();
    setupKeyForm();
    $("#zipall").addEventListener("click", downloadZip);
    $("#clear").addEventListener("click", clearList);
    setInterval(() => state.items.forEach((i) => i.state === "done" || i.state === "deleted" ? i.tick() : null), 30000);
    let config = { open: false };
    try {
      const r = await fetch("/web/config.json", { cache: "no-store" });
      if (r.ok) config = await r.json();
    } catch (e) { /* an older server: no config */ }
    if (config.version) $("#version").textContent = "Squeezer " + config.version;
    if (config.open && config.key) {
      state.open = true;
      const r = await checkKey(config.key);
      $("#booting").hidden = true;
      if (r.status === 200) { showApp(r.data); return; }
      state.open = false;
    }
    const saved = localStorage.getItem(KEY_STORAGE);
    if (!saved) { showKeyPanel(""); return; }
    const r = await checkKey(saved);
    $("#booting").hidden = true;
    if (r.status === 200) showApp(r.data);
    else showKeyPanel(keyMessage(r));
  }

  window.squeezerPage = { fmtBytes, state };
  start();
})();
