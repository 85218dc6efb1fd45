/* Squeezer's web page: the native API v1 from the browser (docs/api.md), nothing private.
   Upload (XMLHttpRequest, for upload progress) -> POST /v1/jobs -> long polling
   GET /v1/jobs/{id}?wait= (queue position, engine progress) -> result, preview
   (GET /v1/files/{id}/preview, or the image itself), full-screen comparison (viewer.js),
   download (the job's signed download_url), DELETE /v1/jobs/{id} (cancel),
   DELETE /v1/files/{id} (delete now).

   The page's jobs survive a reload and show in every tab: each file is an entry in
   localStorage (per key: its name, size, options, upload id and job id, never a password);
   a new page reads the key's jobs with GET /v1/jobs and shows the entries' jobs as they are
   now, and tabs follow each other's entries through the storage event. */
(function () {
  "use strict";

  const W = window.SqueezerWords, C = window.SqueezerControls, V = window.SqueezerViewer;
  const { fmtBytes, fmtPercentSaved, fmtDuration, fmtLeft, fmtClock, capitalize } = W;
  const KEY_STORAGE = "squeezer.apiKey";
  const CONCURRENT = 2; // uploads (and their job creation) at once
  const WAIT = { queued: 2, running: 1 }; // seconds per long poll: the card moves every second
  const PREVIEW_WIDTH = 800;
  const ENDED = ["done", "failed", "password", "cancelled", "deleted", "interrupted", "expired"];
  const BUSY = ["waiting", "uploading", "creating", "queued", "running", "elsewhere"];
  /** Image types a browser shows by itself (the preview uses the file; others get a note). */
  const BROWSER_IMAGES = new Set(["image/jpeg", "image/png", "image/gif", "image/webp", "image/avif",
    "image/bmp", "image/svg+xml"]);

  const $ = (sel, root) => (root || document).querySelector(sel);
  const state = { key: null, me: null, open: false, limits: null, items: [], queue: [], running: 0 };
  const TAB = sessionStorage.getItem("squeezer.tab") || Math.random().toString(36).slice(2);
  sessionStorage.setItem("squeezer.tab", TAB);

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

  /** A same-origin path for an absolute link the API made (the page's CSP allows 'self'). */
  function local(url) {
    try { const u = new URL(url, location.href); return u.pathname + u.search; } catch (e) { return url; }
  }

  function whatWeTake() {
    const text = C.accepts();
    return text ? "Squeezer takes " + text + "." : "";
  }

  /** Plain words for an API error (status + uniform error body), for a file. */
  function plainError(status, body, item) {
    const code = (body && body.code) || "";
    const limit = state.limits ? fmtBytes(state.limits.max_upload_bytes) : null;
    switch (status) {
      case 0: return "Could not reach the server. Check your connection and try again.";
      case 401: return "The server did not accept the API key (unknown or revoked). Use “Change key” at the top.";
      case 404: return "The server no longer knows this file.";
      case 410: return "This file has expired or was deleted on the server.";
      case 413: return "This file is too large for this server" + (limit ? " (the limit is " + limit + ")." : ".");
      case 415:
        return "Squeezer cannot compress this kind of file, so it was not uploaded. " + whatWeTake();
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
      image_invalid: "This image is damaged or not really an image, so it was not compressed.",
      input_too_large: plainError(413, null, item),
      too_many_pages: "This PDF has more pages than the server allows.",
      too_many_frames: "This animation has more frames than the server allows.",
      image_too_large: "A picture in this file is larger than the server allows.",
      decompression_limit: "This file expands to more data than the server allows.",
      timeout: "Compressing took longer than the server allows.",
      memory_limit: "This file needs more memory than the server allows.",
      processing_crashed: "The compressor crashed on this file; it was not compressed.",
      input_gone: plainError(410, null, item),
      cancelled: "Cancelled. Nothing was made from this file.",
    };
    return m[error.code] || capitalize(error.message || "compression failed") + " (" + error.code + ")";
  }

  function retryAfter(headers) {
    const v = parseInt(headers.get("retry-after") || "", 10);
    return Number.isFinite(v) && v >= 0 ? Math.min(v, 3600) : 5;
  }

  function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

  /* ---------- the page's jobs, kept in localStorage ---------- */

  const store = {
    name() { return "squeezer.jobs.v2." + (state.me && state.me.id ? state.me.id : "none"); },
    read() {
      try { const v = JSON.parse(localStorage.getItem(this.name()) || "[]"); return Array.isArray(v) ? v : []; }
      catch (e) { return []; }
    },
    write(entries) { localStorage.setItem(this.name(), JSON.stringify(entries)); },
    put(entry) {
      const entries = this.read();
      const i = entries.findIndex((e) => e.uid === entry.uid);
      if (i >= 0) entries[i] = entry; else entries.push(entry);
      this.write(entries);
    },
    drop(uid) { this.write(this.read().filter((e) => e.uid !== uid)); },
  };

  /* ---------- one file ---------- */

  class Item {
    constructor(entry, file) {
      this.entry = entry; // {uid, name, size, type, options, added, tab, heartbeat, uploadId, jobId}
      this.file = file || null;
      this.password = null;
      this.job = null;
      this.xhr = null;
      this.cancelled = false;
      this.previews = {}; // "before-1" -> blob URL
      this.seen = null; // [time, progress] when the running job was first seen (for the estimate)
      const li = $("#filetpl").content.firstElementChild.cloneNode(true);
      this.el = li;
      li.id = "f-" + entry.uid;
      li.dataset.uid = entry.uid;
      $(".name", li).textContent = entry.name;
      $(".fsize", li).textContent = fmtBytes(entry.size);
      const bar = $(".bar", li);
      bar.id = li.id + "-bar";
      bar.setAttribute("aria-label", "Progress of " + entry.name);
      const pw = $(".pwinput", li);
      pw.id = li.id + "-pw";
      $(".pwlabel", li).htmlFor = pw.id;
      $(".password", li).addEventListener("submit", (e) => { e.preventDefault(); this.unlock(); });
      $(".delete", li).addEventListener("click", () => this.remove());
      $(".delete", li).setAttribute("aria-label", "Delete " + entry.name + " from the server now");
      $(".cancel", li).addEventListener("click", () => this.cancel());
      $(".cancel", li).setAttribute("aria-label", "Cancel " + entry.name);
      $(".forget", li).addEventListener("click", () => forget(this));
      $(".forget", li).setAttribute("aria-label", "Remove " + entry.name + " from the list");
      $(".open-compare", li).addEventListener("click", (e) => this.openViewer(e.currentTarget));
      $(".split", li).addEventListener("input", (e) => this.split(e.target.value));
      $(".layout-toggle", li).addEventListener("click", (e) => this.toggleLayout(e.target));
      if (entry.jobId) li.dataset.jobId = entry.jobId;
      this.setState("waiting", "Waiting to upload…");
    }

    get name() { return this.entry.name; }

    save() { store.put(this.entry); }

    setState(name, status) {
      this.state = name;
      this.el.dataset.state = name;
      if (status !== undefined) $(".status", this.el).textContent = status;
      const busy = BUSY.includes(name);
      $(".cancel", this.el).hidden = !busy || name === "elsewhere" || name === "creating";
      $(".forget", this.el).hidden = busy;
      $(".bar", this.el).hidden = !busy;
      renderTotals();
    }

    status(text) { $(".status", this.el).textContent = text; }

    progress(fraction) {
      const bar = $(".bar", this.el);
      if (fraction === null) { bar.removeAttribute("value"); return; }
      bar.value = Math.round(Math.max(0, Math.min(1, fraction)) * 100);
    }

    fail(message, name) {
      const box = $(".error", this.el);
      box.textContent = message;
      box.hidden = false;
      this.setState(name || "failed", "");
    }

    clearError() { $(".error", this.el).hidden = true; }

    async waitRetry(headers) {
      for (let left = retryAfter(headers); left > 0; left--) {
        this.status("The server is busy (rate limit reached). Retrying in " + left + " s…");
        await sleep(1000);
      }
    }

    /** From wherever the entry stands to the end: upload, job, result. */
    async run() {
      try {
        if (!this.entry.uploadId) {
          if (!this.file) return this.interrupted();
          if (!(await this.upload())) return;
        }
        if (!this.entry.jobId && !(await this.createJob())) return;
        await this.watch();
      } catch (e) {
        console.error(e);
        this.fail("Something went wrong in the page: " + e.message);
      }
    }

    interrupted() {
      this.fail("The upload stopped when the page was closed or reloaded. Add the file again to compress it.", "interrupted");
    }

    upload() {
      this.setState("uploading", "Uploading… 0 %");
      this.progress(0);
      this.entry.tab = TAB;
      this.entry.heartbeat = Date.now();
      this.save();
      const started = performance.now();
      return new Promise((resolve) => {
        const xhr = new XMLHttpRequest();
        this.xhr = xhr;
        xhr.open("POST", "/v1/files");
        if (state.key) xhr.setRequestHeader("Authorization", "Bearer " + state.key);
        xhr.upload.addEventListener("progress", (e) => {
          if (!e.lengthComputable) return;
          const f = e.loaded / e.total;
          this.progress(f);
          const elapsed = (performance.now() - started) / 1000;
          const left = f > 0.02 && elapsed > 1 ? elapsed * (1 - f) / f : NaN;
          this.status("Uploading… " + Math.round(f * 100) + " % (" + fmtBytes(e.loaded) + " of " + fmtBytes(e.total) + ")" +
            (left >= 3 ? ", " + fmtLeft(left) : ""));
          this.el.dataset.uploaded = String(Math.round(f * 100));
          if (Date.now() - this.entry.heartbeat > 5000) { this.entry.heartbeat = Date.now(); this.save(); }
        });
        xhr.addEventListener("load", async () => {
          this.xhr = null;
          let body = null;
          try { body = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
          if (xhr.status === 201 && body) {
            this.entry.uploadId = body.id;
            this.entry.type = body.mime;
            this.save();
            resolve(true);
          } else if (xhr.status === 429) {
            await this.waitRetry(new Headers({ "retry-after": xhr.getResponseHeader("Retry-After") || "" }));
            resolve(await this.upload());
          } else {
            this.fail(plainError(xhr.status, body, this));
            this.entry.failed = plainError(xhr.status, body, this); // shown again after a reload
            this.save();
            if (xhr.status === 401) showKeyProblem();
            resolve(false);
          }
        });
        xhr.addEventListener("error", () => { this.xhr = null; this.fail(plainError(0, null, this)); resolve(false); });
        xhr.addEventListener("abort", () => { this.xhr = null; resolve(false); });
        const form = new FormData();
        form.append("file", this.file, this.file.name);
        xhr.send(form);
      });
    }

    async createJob() {
      this.clearError();
      this.setState("creating", "Starting…");
      this.progress(null);
      const options = Object.assign({}, this.entry.options);
      if (this.password !== null) options.password = this.password;
      // the same entry creates one job, even when two tabs resume it at once
      const idem = this.password === null ? { "Idempotency-Key": "web-" + this.entry.uid } : {};
      let r;
      for (;;) {
        r = await api("POST", "/v1/jobs", { json: { input: { file_id: this.entry.uploadId }, options }, headers: idem });
        if (r.status !== 429) break;
        await this.waitRetry(r.headers);
      }
      if (r.status !== 201 && r.status !== 200) {
        this.fail(r.status === 410 ? "The uploaded file is no longer on the server; add it again." : plainError(r.status, r.data, this));
        if (r.status === 401) showKeyProblem();
        return false;
      }
      this.entry.jobId = r.data.id;
      this.el.dataset.jobId = r.data.id;
      this.save();
      this.show(r.data);
      return true;
    }

    /** Follow the job until it ends (long polling), then show how it ended. */
    async watch(job) {
      job = job || this.job;
      if (this.watching) return;
      this.watching = true;
      try {
        job = await this.follow(job);
      } finally {
        this.watching = false;
      }
      if (job && !this.cancelled) this.end(job);
    }

    async follow(job) {
      for (;;) {
        if (job && ["succeeded", "failed", "cancelled"].includes(job.state)) return job;
        const wait = job ? (WAIT[job.state] || 2) : 0;
        const next = await api("GET", "/v1/jobs/" + this.entry.jobId + "?wait=" + wait);
        if (this.cancelled) return null;
        if (next.status === 429) { await this.waitRetry(next.headers); continue; }
        if (next.status === 404 || next.status === 410) { this.expired(); return null; }
        if (next.status !== 200) { this.fail(plainError(next.status, next.data, this)); return null; }
        job = next.data;
        if (!["succeeded", "failed", "cancelled"].includes(job.state)) this.show(job);
      }
    }

    expired() {
      this.fail("No longer on the server: results are kept for " +
        fmtDuration(state.limits ? state.limits.file_ttl_seconds : 7200) + ", then deleted.", "expired");
    }

    /** A queued or running job on the card: its place in the queue, or its progress. */
    show(job) {
      this.job = job;
      if (job.state === "queued") {
        const ahead = (job.queue_position || 1) - 1;
        this.setState("queued", ahead > 0
          ? "Waiting for a free worker: " + ahead + " job" + (ahead === 1 ? "" : "s") + " ahead of this one…"
          : "Next in line, waiting for a free worker…");
        this.el.dataset.queuePosition = String(job.queue_position || "");
        this.progress(null);
        return;
      }
      const p = job.progress || 0;
      const now = performance.now() / 1000;
      if (!this.seen || p < this.seen[1]) this.seen = [now, p];
      const [t0, p0] = this.seen;
      const rate = now - t0 > 2 && p > p0 ? (p - p0) / (now - t0) : 0;
      const left = rate > 0 ? (1 - p) / rate : NaN;
      this.setState("running", "Compressing… " + Math.round(p * 100) + " %" + (left >= 5 ? ", " + fmtLeft(left) : ""));
      this.el.dataset.progress = String(Math.round(p * 100));
      this.progress(p);
    }

    end(job) {
      this.job = job;
      this.el.dataset.jobId = job.id;
      if (job.state === "succeeded") this.showResult(job);
      else if (job.state === "cancelled") this.fail(jobError({ code: "cancelled" }, this), "cancelled");
      else if (job.error && (job.error.code === "password_required" || job.error.code === "invalid_password")) this.askPassword(job.error.code);
      else this.fail(jobError(job.error || { code: job.state, message: job.state }, this));
      if (job.state !== "succeeded" && this.entry.uploadId) $(".delete", this.el).hidden = false;
    }

    async cancel() {
      const button = $(".cancel", this.el);
      button.disabled = true;
      if (this.state === "waiting") {
        state.queue = state.queue.filter((i) => i !== this);
        this.cancelled = true;
        store.drop(this.entry.uid);
        this.fail("Cancelled before it was uploaded.", "cancelled");
      } else if (this.state === "uploading" && this.xhr) {
        this.cancelled = true;
        this.xhr.abort();
        store.drop(this.entry.uid);
        this.fail("Cancelled while uploading; nothing was kept on the server.", "cancelled");
      } else if (this.entry.jobId) {
        const r = await api("DELETE", "/v1/jobs/" + this.entry.jobId);
        if (r.status === 200) {
          this.cancelled = true;
          this.end(r.data);
        } else if (r.status === 409) {
          this.status("It finished before it could be cancelled.");
        } else {
          this.status("Could not cancel: " + plainError(r.status, r.data, this));
        }
      }
      button.disabled = false;
      $("#filestitle").focus();
    }

    askPassword(code) {
      const form = $(".password", this.el);
      this.fail(code === "invalid_password"
        ? "That password did not open the PDF. Check it and try again."
        : "This PDF is protected with a password. Enter it to compress the file.", "password");
      form.hidden = false;
      const input = $(".pwinput", form);
      input.value = "";
      input.setAttribute("aria-invalid", code === "invalid_password" ? "true" : "false");
      input.focus();
    }

    async unlock() {
      const input = $(".pwinput", this.el);
      if (!input.value) { input.focus(); return; }
      this.password = input.value;
      $(".password", this.el).hidden = true;
      this.entry.jobId = null;
      if (await this.createJob()) await this.watch();
    }

    showResult(job) {
      const res = job.result;
      const el = this.el;
      this.clearError();
      this.setState("done", "Done.");
      const before = res.input ? res.input.size : this.entry.size;
      const after = res.output.size;
      const sizes = $(".sizes", el);
      sizes.dataset.inputSize = before;
      sizes.dataset.outputSize = after;
      $(".before", el).textContent = fmtBytes(before);
      $(".after", el).textContent = fmtBytes(after);
      $(".saved", el).textContent = fmtPercentSaved(before, after);
      const kind = W.kindLabel(res);
      if (kind) { $(".kind", el).textContent = kind; $(".kind", el).hidden = false; }
      const plain = $(".plain", el);
      plain.replaceChildren();
      for (const [text, cls] of W.plain(res)) {
        const li = document.createElement("li");
        li.textContent = text;
        if (cls) li.className = cls;
        plain.append(li);
      }
      $(".details-body", el).replaceChildren(W.details(res));
      $(".result", el).hidden = false;
      const dl = $(".download", el);
      dl.href = local(res.download_url);
      dl.setAttribute("download", res.output.name);
      dl.textContent = "Download";
      dl.setAttribute("aria-label", "Download " + res.output.name);
      dl.hidden = false;
      $(".delete", el).hidden = false;
      this.expiresAt = new Date(res.expires_at);
      this.tick();
      this.loadPreview(res);
    }

    tick() {
      if (!this.expiresAt) return;
      const p = $(".expires", this.el);
      const left = (this.expiresAt - Date.now()) / 1000;
      if (this.state === "deleted") {
        p.textContent = "Deleted from the server.";
      } else if (left <= 0) {
        p.textContent = "This result has expired: the server has deleted it.";
        $(".download", this.el).hidden = true;
      } else {
        p.textContent = "Kept on the server until " + fmtClock(this.expiresAt) +
          " (" + fmtDuration(left) + " from now), then deleted automatically.";
      }
    }

    /* ----- previews and the comparison ----- */

    mediaKind(res) {
      const mime = ((res.output && res.output.mime) || "").split("/")[0];
      return mime === "video" || mime === "audio" ? mime : null;
    }

    isDocument(res) {
      return res.output && res.output.mime === "application/pdf";
    }

    /** Before and after pictures of ``page`` (a document's rendered page, or the image). */
    async pictures(res, page, width) {
      const headers = this.password !== null ? { "X-Squeezer-Password": this.password } : {};
      const one = async (file, which) => {
        const cached = this.previews[which + "-" + page + "-" + width];
        if (cached) return cached;
        const path = this.isDocument(res)
          ? "/v1/files/" + file.file_id + "/preview?page=" + page + "&width=" + width
          : "/v1/files/" + file.file_id + "/content";
        for (let attempt = 0; ; attempt++) {
          const r = await api("GET", path, { headers, blob: true });
          if (r.status === 200) {
            const url = URL.createObjectURL(r.data);
            this.previews[which + "-" + page + "-" + width] = url;
            return url;
          }
          if (r.status !== 429 || attempt >= 3) {
            throw new Error("No preview: " + plainError(r.status, r.data, this).replace(/\.$/, "").toLowerCase() + ".");
          }
          await sleep(retryAfter(r.headers) * 1000);
        }
      };
      return Promise.all([one(res.input, "before"), one(res.output, "after")]);
    }

    async loadPreview(res) {
      const el = this.el;
      const note = $(".preview-note", el);
      const media = this.mediaKind(res);
      const compare = $(".open-compare", el);
      if (media) {
        compare.textContent = "Play before and after";
        compare.hidden = !res.input;
        return;
      }
      const isImage = (f) => f && (f.mime || "").startsWith("image/");
      if (!res.input || !(this.isDocument(res) || isImage(res.output))) return; // e.g. archives: the details say it
      if (isImage(res.output) && !(BROWSER_IMAGES.has(res.input.mime) && BROWSER_IMAGES.has(res.output.mime))) {
        const odd = BROWSER_IMAGES.has(res.input.mime) ? res.output.mime : res.input.mime;
        note.textContent = "No preview: this browser cannot show " + W.formatName(odd.split("/")[1].replace("svg+xml", "svg")) + " images.";
        note.hidden = false;
        return;
      }
      const width = Math.min(1600, Math.round(PREVIEW_WIDTH * Math.min(2, window.devicePixelRatio || 1)));
      let urls;
      try {
        urls = await this.pictures(res, 1, width);
      } catch (e) {
        note.textContent = e.message;
        note.hidden = false;
        return;
      }
      const [imgBefore, imgAfter] = [$(".img-before", el), $(".img-after", el)];
      imgBefore.src = urls[0];
      imgAfter.src = urls[1];
      const doc = this.isDocument(res);
      $(".compare-title", el).textContent = doc ? "Page 1" + (res.report && res.report.pages > 1 ? " of " + res.report.pages : "") : "Preview";
      imgBefore.alt = (doc ? "First page of " : "") + this.name + " before compression";
      imgAfter.alt = (doc ? "First page" : "The image") + " after compression";
      $(".compare", el).hidden = false;
      compare.textContent = "Compare";
      compare.hidden = false;
      compare.setAttribute("aria-label", "Compare " + this.name + " before and after, full screen");
      this.split(50);
    }

    async openViewer(opener) {
      const res = this.job && this.job.result;
      if (!res) return;
      const media = this.mediaKind(res);
      const sizes = [res.input ? res.input.size : this.entry.size, res.output.size];
      if (media) {
        const links = await Promise.all([res.input.file_id, res.output.file_id].map((id) => api("GET", "/v1/files/" + id + "/link")));
        if (links.some((r) => r.status !== 200)) {
          this.status("Cannot play: " + plainError(links.find((r) => r.status !== 200).status, null, this));
          return;
        }
        const r = res.report || {};
        const formats = [r.format_in, r.format_out || r.format_in].map((f) => W.formatName(f));
        V.open({ title: this.name, kind: media, sizes, opener, formats, media: { before: local(links[0].data.url), after: local(links[1].data.url) } });
        return;
      }
      const doc = this.isDocument(res);
      const width = Math.min(1600, Math.round(Math.max(window.innerWidth, 800) * Math.min(2, window.devicePixelRatio || 1)));
      V.open({
        title: this.name, kind: "image", sizes, opener,
        pages: doc ? Math.max(1, (res.report && res.report.pages) || 1) : 1,
        load: (page) => this.pictures(res, page, doc ? width : 0),
      });
    }

    split(value) { $(".frames", this.el).style.setProperty("--split", value + "%"); }

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
      if (this.entry.uploadId) ids.push(this.entry.uploadId);
      for (const id of ids) {
        const r = await api("DELETE", "/v1/files/" + id);
        if (r.status !== 204 && r.status !== 410 && r.status !== 404) {
          del.disabled = false;
          this.status("Could not delete: " + plainError(r.status, r.data, this));
          return;
        }
      }
      this.entry.deleted = true;
      this.save();
      this.markDeleted();
      $("#filestitle").focus();
    }

    markDeleted() {
      $(".delete", this.el).hidden = true;
      $(".download", this.el).hidden = true;
      $(".compare", this.el).hidden = true;
      $(".open-compare", this.el).hidden = true;
      this.dropPreviews();
      this.setState("deleted", "Deleted from the server.");
      this.tick();
    }

    dropPreviews() {
      Object.values(this.previews).forEach((u) => URL.revokeObjectURL(u));
      this.previews = {};
    }
  }

  /* ---------- the list ---------- */

  function enqueue(item) {
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

  function newUid() {
    return Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 10);
  }

  function addFiles(files) {
    if (!files.length) return;
    const options = C.value();
    for (const file of files) {
      const entry = { uid: newUid(), name: file.name, size: file.size, type: file.type, options,
        added: Date.now(), tab: TAB, heartbeat: Date.now() };
      store.put(entry);
      const item = place(new Item(entry, file));
      enqueue(item);
    }
    const family = C.familyOf(files[0].name, files[0].type);
    if (family) C.describeFor(family.name);
    renderTotals();
    // on a narrow screen the list is below the drop zone: bring it into view
    const first = state.items[state.items.length - files.length];
    if (first) {
      const box = first.el.getBoundingClientRect();
      if (box.top > window.innerHeight - 80 || box.bottom < 0) {
        $("#results").scrollIntoView({ behavior: matchMedia("(prefers-reduced-motion: reduce)").matches ? "auto" : "smooth", block: "start" });
      }
    }
  }

  /** Add an item's card to the list, newest entries last (the order files were added in). */
  function place(item) {
    state.items.push(item);
    state.items.sort((a, b) => a.entry.added - b.entry.added);
    const list = $("#files");
    const after = state.items[state.items.indexOf(item) + 1];
    list.insertBefore(item.el, after ? after.el : null);
    renderTotals();
    return item;
  }

  function forget(item) {
    item.dropPreviews();
    store.drop(item.entry.uid);
    state.items = state.items.filter((i) => i !== item);
    item.el.remove();
    renderTotals();
    $("#filestitle").focus();
  }

  function renderTotals() {
    const done = state.items.filter((i) => i.state === "done");
    const busy = state.items.filter((i) => BUSY.includes(i.state));
    $("#empty").hidden = state.items.length > 0;
    $("#zipall").disabled = done.length === 0;
    $("#clear").disabled = !state.items.some((i) => ENDED.includes(i.state));
    let text = "";
    if (done.length) {
      const before = done.reduce((s, i) => s + (i.job.result.input ? i.job.result.input.size : i.entry.size), 0);
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
        const response = await fetch(local(res.download_url), { cache: "no-store" });
        if (!response.ok) throw new Error(done[n].name + ": HTTP " + response.status);
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

  function clearFinished() {
    for (const item of state.items.filter((i) => ENDED.includes(i.state))) {
      item.dropPreviews();
      store.drop(item.entry.uid);
      item.el.remove();
    }
    state.items = state.items.filter((i) => !ENDED.includes(i.state));
    $("#zipstatus").textContent = "";
    renderTotals();
    $("#filestitle").focus();
  }

  /* ---------- resuming: after a reload, and what other tabs add ---------- */

  /** The key's jobs by id, newest first, as far back as the oldest entry (a few pages at most). */
  async function listJobs(wanted) {
    const found = new Map();
    let cursor = null;
    for (let page = 0; page < 5 && wanted.size; page++) {
      const r = await api("GET", "/v1/jobs?limit=100" + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
      if (r.status !== 200 || !r.data) break;
      for (const job of r.data.data) {
        if (wanted.has(job.id)) { found.set(job.id, job); wanted.delete(job.id); }
      }
      cursor = r.data.next_cursor;
      if (!cursor) break;
    }
    return found;
  }

  /** Show an entry found in storage as its job is now, and follow it if it is still running. */
  function resume(entry, job) {
    const item = place(new Item(entry));
    if (entry.deleted) {
      if (job) item.job = job;
      item.markDeleted();
      return;
    }
    if (entry.failed && !entry.jobId) {
      item.fail(entry.failed);
    } else if (entry.jobId) {
      if (job === null) { item.expired(); return; }
      if (job) {
        if (["succeeded", "failed", "cancelled"].includes(job.state)) { item.end(job); return; }
        item.show(job);
      }
      item.watch(job).catch((e) => item.fail("Something went wrong in the page: " + e.message));
    } else if (entry.uploadId) {
      item.run();
    } else if (entry.tab !== TAB && Date.now() - (entry.heartbeat || 0) < 20000) {
      item.setState("elsewhere", "Uploading in another tab…");
    } else {
      item.interrupted();
    }
  }

  async function resumeAll() {
    const entries = store.read();
    if (!entries.length) return;
    const wanted = new Set(entries.filter((e) => e.jobId).map((e) => e.jobId));
    const found = wanted.size ? await listJobs(new Set(wanted)) : new Map();
    for (const entry of entries) {
      if (state.items.some((i) => i.entry.uid === entry.uid)) continue;
      let job;
      if (entry.jobId) {
        job = found.get(entry.jobId);
        if (!job) { // older than the listing reaches, or gone
          const r = await api("GET", "/v1/jobs/" + entry.jobId);
          job = r.status === 200 ? r.data : (r.status === 404 || r.status === 410 ? null : undefined);
        }
      }
      resume(entry, job);
    }
  }

  /** Another tab changed the entries: show its new files, follow its uploads, drop what it cleared. */
  function onStorage(e) {
    if (e.key !== store.name() || !state.me) return;
    const entries = store.read();
    const byUid = new Map(entries.map((x) => [x.uid, x]));
    for (const item of state.items.slice()) {
      const entry = byUid.get(item.entry.uid);
      if (!entry) {
        if (ENDED.includes(item.state) || item.state === "elsewhere") {
          item.dropPreviews();
          state.items = state.items.filter((i) => i !== item);
          item.el.remove();
        }
        continue;
      }
      if (item.state === "elsewhere" && (entry.uploadId || entry.jobId)) {
        item.entry = entry;
        if (entry.jobId) {
          item.el.dataset.jobId = entry.jobId;
          item.watch(null);
        } else {
          item.setState("elsewhere", "Uploaded in another tab; starting…");
        }
      } else if (entry.deleted && !item.entry.deleted && item.state === "done") {
        item.entry = entry;
        item.markDeleted();
      }
    }
    for (const entry of entries) {
      if (!state.items.some((i) => i.entry.uid === entry.uid)) resume(entry, undefined);
    }
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

  async function showApp(me) {
    state.me = me;
    state.limits = me.limits || null;
    $("#booting").hidden = true;
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
    for (const item of state.items) { item.dropPreviews(); item.el.remove(); }
    state.items = [];
    await resumeAll();
    document.body.dataset.ready = "true";
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
        await showApp(r.data);
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

  async function loadOptions() {
    try {
      const r = await fetch("/v1/options", { cache: "no-store" });
      if (r.ok) return await r.json();
    } catch (e) { /* an older server */ }
    return null;
  }

  async function start() {
    C.build(await loadOptions());
    $("#accepts").textContent = C.accepts() ? "Takes " + C.accepts() + "." : "";
    const families = C.formatsByFamily();
    $("#formatlist").replaceChildren(...families.map(([title, names]) => {
      const li = document.createElement("li");
      const b = document.createElement("strong");
      b.textContent = title + ": ";
      li.append(b, names + ".");
      return li;
    }));
    $("#formats").hidden = !families.length;
    setupDrop();
    setupKeyForm();
    $("#zipall").addEventListener("click", downloadZip);
    $("#clear").addEventListener("click", clearFinished);
    window.addEventListener("storage", onStorage);
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
      if (r.status === 200) { await showApp(r.data); return; }
      state.open = false;
    }
    const saved = localStorage.getItem(KEY_STORAGE);
    if (!saved) { showKeyPanel(""); return; }
    const r = await checkKey(saved);
    if (r.status === 200) await showApp(r.data);
    else showKeyPanel(keyMessage(r));
  }

  window.squeezerPage = { fmtBytes, state, store };
  start();
})();
