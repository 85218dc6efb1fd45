/* The full-screen comparison (Squoosh-style): before and after on top of each other with a
   split you drag, or side by side; both zoom and pan together (wheel, pinch, drag, +/−/0 and
   the arrow keys), a page picker for documents, and players for video and audio.

   SqueezerViewer.open({
     title, kind: "image" | "video" | "audio",
     pages: N (documents: a page picker; load(page) gives the page's two pictures),
     load(page) -> Promise<[beforeUrl, afterUrl]>  (pictures), or
     media: {before: url, after: url}  (video / audio, played from signed links),
     formats: [beforeName, afterName]  (what a pane says when the browser cannot play it),
     sizes: [beforeBytes, afterBytes], opener: the element focus returns to,
   }) */
(function () {
  "use strict";

  const $ = (sel, root) => (root || document).querySelector(sel);
  const MIN_ZOOM = 0.25, MAX_ZOOM = 16;
  let v = null; // the open view's state

  function dialog() { return $("#viewer"); }

  function open(spec) {
    const d = dialog();
    close(true);
    v = { spec, zoom: 1, x: 0, y: 0, split: 50, side: spec.kind === "video", page: 1,
      natural: [0, 0], pointers: new Map(), token: 0 };
    $(".vtitle", d).textContent = spec.title;
    const sizes = spec.sizes || [];
    const fmt = window.SqueezerWords.fmtBytes;
    $(".vpane-before .vsize", d).textContent = sizes[0] ? "· " + fmt(sizes[0]) : "";
    $(".vpane-after .vsize", d).textContent = sizes[1] ? "· " + fmt(sizes[1]) : "";
    const media = spec.kind === "video" || spec.kind === "audio";
    d.dataset.kind = spec.kind;
    $(".vzoom", d).hidden = media;
    $(".vmode", d).hidden = spec.kind === "audio";
    $(".vsplit", d).hidden = media;
    $(".vhelp", d).hidden = media;
    $(".vdivider", d).hidden = media;
    const pages = $(".vpages", d);
    pages.hidden = !(spec.pages > 1);
    $(".vpage", d).max = spec.pages || 1;
    $(".vpage", d).value = 1;
    $(".vpages-of", d).textContent = spec.pages > 1 ? "of " + spec.pages : "";
    $(".vnote", d).hidden = true;
    for (const layer of d.querySelectorAll(".vlayer")) layer.replaceChildren();
    setSide(v.side);
    $(".vsplit-input", d).value = 50;
    d.showModal();
    if (media) showMedia(spec);
    else showPage(1);
    (media ? $(".vclose", d) : $(".vstage", d)).focus();
  }

  function close(silent) {
    const d = dialog();
    if (!v) return;
    for (const m of d.querySelectorAll("video, audio")) { m.pause(); m.removeAttribute("src"); m.load(); }
    const opener = v.spec.opener;
    v = null;
    if (d.open) d.close();
    if (!silent && opener && document.contains(opener)) opener.focus();
  }

  /* ---------- pictures ---------- */

  async function showPage(page) {
    const d = dialog();
    const token = ++v.token;
    v.page = page;
    $(".vpage", d).value = page;
    $(".vprev", d).disabled = page <= 1;
    $(".vnext", d).disabled = page >= (v.spec.pages || 1);
    $(".vstage", d).setAttribute("aria-busy", "true");
    let urls;
    try {
      urls = await v.spec.load(page);
    } catch (e) {
      if (!v || token !== v.token) return;
      note(e.message || String(e));
      return;
    }
    if (!v || token !== v.token) return;
    const imgs = urls.map((url, i) => {
      const img = new Image();
      img.alt = (i ? "After" : "Before") + " compression" + (v.spec.pages > 1 ? ", page " + page : "");
      img.draggable = false;
      img.src = url;
      return img;
    });
    await Promise.all(imgs.map((img) => img.decode().catch(() => null)));
    if (!v || token !== v.token) return;
    const layers = d.querySelectorAll(".vlayer");
    layers[0].replaceChildren(imgs[0]);
    layers[1].replaceChildren(imgs[1]);
    v.natural = [imgs[0].naturalWidth || imgs[1].naturalWidth, imgs[0].naturalHeight || imgs[1].naturalHeight];
    $(".vnote", d).hidden = true;
    $(".vstage", d).removeAttribute("aria-busy");
    d.dataset.page = String(page);
    layout();
  }

  function note(text) {
    const n = $(".vnote", dialog());
    n.textContent = text;
    n.hidden = false;
  }

  /** The scale at which the picture fits its pane. */
  function fitScale(pane) {
    const [w, h] = v.natural;
    if (!w || !h) return 1;
    return Math.min(pane.clientWidth / w, pane.clientHeight / h);
  }

  function layout() {
    if (!v || v.spec.kind === "video" || v.spec.kind === "audio") return;
    const d = dialog();
    const panes = d.querySelectorAll(".vpane");
    for (const pane of panes) {
      const img = $("img", pane);
      if (!img) continue;
      const scale = fitScale(pane) * v.zoom;
      const w = v.natural[0] * scale, h = v.natural[1] * scale;
      const left = (pane.clientWidth - w) / 2 + v.x, top = (pane.clientHeight - h) / 2 + v.y;
      img.style.width = v.natural[0] + "px";
      img.style.height = v.natural[1] + "px";
      img.style.transform = "translate(" + left + "px," + top + "px) scale(" + scale + ")";
    }
    const stage = $(".vstage", d);
    stage.style.setProperty("--split", v.split + "%");
    $(".vlevel", d).textContent = Math.round(v.zoom * 100) + " %";
    d.dataset.zoom = v.zoom.toFixed(3);
  }

  function zoomTo(z, cx, cy) {
    const d = dialog();
    const stage = $(".vstage", d);
    const pane = v.side ? $(".vpane-before", d) : stage;
    z = Math.max(MIN_ZOOM, Math.min(MAX_ZOOM, z));
    // keep the point under (cx, cy) (pane coordinates; default: the centre) where it is
    const px = (cx === undefined ? pane.clientWidth / 2 : cx) - pane.clientWidth / 2;
    const py = (cy === undefined ? pane.clientHeight / 2 : cy) - pane.clientHeight / 2;
    const k = z / v.zoom;
    v.x = px - (px - v.x) * k;
    v.y = py - (py - v.y) * k;
    v.zoom = z;
    layout();
  }

  function fit() { v.zoom = 1; v.x = 0; v.y = 0; layout(); }

  function pan(dx, dy) { v.x += dx; v.y += dy; layout(); }

  function setSplit(pct) {
    v.split = Math.max(0, Math.min(100, pct));
    $(".vsplit-input", dialog()).value = Math.round(v.split);
    layout();
  }

  function setSide(on) {
    const d = dialog();
    v.side = on;
    d.classList.toggle("side", on);
    const button = $(".vmode", d);
    button.setAttribute("aria-pressed", on ? "true" : "false");
    button.textContent = on ? "Overlay" : "Side by side";
    $(".vsplit", d).hidden = on || v.spec.kind === "video" || v.spec.kind === "audio";
    $(".vdivider", d).hidden = on || v.spec.kind === "video" || v.spec.kind === "audio";
    requestAnimationFrame(layout);
  }

  /* ---------- video and audio ---------- */

  function showMedia(spec) {
    const d = dialog();
    const layers = d.querySelectorAll(".vlayer");
    const players = [spec.media.before, spec.media.after].map((url, i) => {
      const m = document.createElement(spec.kind === "audio" ? "audio" : "video");
      m.controls = true;
      m.preload = "metadata";
      m.playsInline = true;
      m.src = url;
      m.setAttribute("aria-label", (i ? "After" : "Before") + " compression");
      m.className = "vmedia";
      layers[i].replaceChildren(m);
      return m;
    });
    // the two players move together: play, pause and seek on one follow on the other
    let echo = false;
    const follow = (a, b) => {
      for (const event of ["play", "pause", "seeked"]) {
        a.addEventListener(event, () => {
          if (echo) return;
          echo = true;
          if (Math.abs(b.currentTime - a.currentTime) > 0.25) b.currentTime = a.currentTime;
          const done = event === "play" ? b.play().catch(() => null) : (event === "pause" ? b.pause() : null);
          Promise.resolve(done).finally(() => { setTimeout(() => { echo = false; }, 50); });
        });
      }
    };
    follow(players[0], players[1]);
    follow(players[1], players[0]);
    // a side this browser cannot play (an AVI original, say) says so in its own pane, in
    // plain words; the other side still plays
    const names = spec.formats || [];
    players.forEach((m, i) => m.addEventListener("error", () => {
      const p = document.createElement("p");
      p.className = "vcannot";
      p.textContent = "This browser cannot play " + (i ? "the result" : "the original") +
        (names[i] ? " (" + names[i] + ")" : "") + ". Download it to play it in another player.";
      m.replaceWith(p);
    }));
  }

  /* ---------- input ---------- */

  function onPointerDown(e) {
    if (!v || v.spec.kind === "video" || v.spec.kind === "audio") return;
    const stage = $(".vstage", dialog());
    stage.setPointerCapture(e.pointerId);
    const rect = stage.getBoundingClientRect();
    const dividerX = rect.left + rect.width * v.split / 100;
    const mode = v.pointers.size === 0 && !v.side && Math.abs(e.clientX - dividerX) < 24 ? "split" : "pan";
    v.pointers.set(e.pointerId, { x: e.clientX, y: e.clientY, mode });
    e.preventDefault();
  }

  function onPointerMove(e) {
    if (!v || !v.pointers.has(e.pointerId)) return;
    const p = v.pointers.get(e.pointerId);
    const stage = $(".vstage", dialog());
    const rect = stage.getBoundingClientRect();
    if (v.pointers.size === 2) { // pinch: the distance between the fingers is the zoom
      const [a, b] = [...v.pointers.values()];
      const before = Math.hypot(a.x - b.x, a.y - b.y);
      p.x = e.clientX; p.y = e.clientY;
      const after = Math.hypot(a.x - b.x, a.y - b.y);
      if (before > 0) zoomTo(v.zoom * after / before, (a.x + b.x) / 2 - rect.left, (a.y + b.y) / 2 - rect.top);
      return;
    }
    if (p.mode === "split") {
      setSplit((e.clientX - rect.left) / rect.width * 100);
    } else {
      pan(e.clientX - p.x, e.clientY - p.y);
    }
    p.x = e.clientX; p.y = e.clientY;
  }

  function onPointerUp(e) { if (v) v.pointers.delete(e.pointerId); }

  function onWheel(e) {
    if (!v || v.spec.kind === "video" || v.spec.kind === "audio") return;
    e.preventDefault();
    const pane = v.side ? e.target.closest(".vpane") || $(".vstage", dialog()) : $(".vstage", dialog());
    const rect = pane.getBoundingClientRect();
    zoomTo(v.zoom * Math.exp(-e.deltaY * (e.deltaMode ? 0.05 : 0.0015)), e.clientX - rect.left, e.clientY - rect.top);
  }

  function onKey(e) {
    if (!v || v.spec.kind === "video" || v.spec.kind === "audio") return;
    const step = e.shiftKey ? 200 : 40;
    const keys = {
      ArrowLeft: () => pan(step, 0), ArrowRight: () => pan(-step, 0),
      ArrowUp: () => pan(0, step), ArrowDown: () => pan(0, -step),
      "+": () => zoomTo(v.zoom * 1.25), "=": () => zoomTo(v.zoom * 1.25),
      "-": () => zoomTo(v.zoom / 1.25), "0": fit,
      "[": () => setSplit(v.split - 5), "]": () => setSplit(v.split + 5),
      PageDown: () => v.page < (v.spec.pages || 1) && showPage(v.page + 1),
      PageUp: () => v.page > 1 && showPage(v.page - 1),
    };
    const act = keys[e.key];
    if (act) { e.preventDefault(); act(); }
  }

  function setup() {
    const d = dialog();
    if (!d) return;
    const stage = $(".vstage", d);
    stage.addEventListener("pointerdown", onPointerDown);
    stage.addEventListener("pointermove", onPointerMove);
    stage.addEventListener("pointerup", onPointerUp);
    stage.addEventListener("pointercancel", onPointerUp);
    stage.addEventListener("wheel", onWheel, { passive: false });
    stage.addEventListener("keydown", onKey);
    stage.addEventListener("dblclick", (e) => {
      if (!v) return;
      const rect = stage.getBoundingClientRect();
      if (v.zoom > 1.01) fit(); else zoomTo(2.5, e.clientX - rect.left, e.clientY - rect.top);
    });
    $(".vin", d).addEventListener("click", () => zoomTo(v.zoom * 1.25));
    $(".vout", d).addEventListener("click", () => zoomTo(v.zoom / 1.25));
    $(".vfit", d).addEventListener("click", fit);
    $(".vmode", d).addEventListener("click", () => setSide(!v.side));
    $(".vclose", d).addEventListener("click", () => close());
    $(".vsplit-input", d).addEventListener("input", (e) => setSplit(Number(e.target.value)));
    $(".vprev", d).addEventListener("click", () => v.page > 1 && showPage(v.page - 1));
    $(".vnext", d).addEventListener("click", () => v.page < (v.spec.pages || 1) && showPage(v.page + 1));
    $(".vpage", d).addEventListener("change", (e) => {
      const n = Math.max(1, Math.min(v.spec.pages || 1, Math.round(Number(e.target.value) || 1)));
      showPage(n);
    });
    d.addEventListener("cancel", (e) => { e.preventDefault(); close(); }); // Esc
    d.addEventListener("close", () => { if (v) close(); });
    window.addEventListener("resize", () => requestAnimationFrame(layout));
  }

  document.addEventListener("DOMContentLoaded", setup);
  window.SqueezerViewer = { open, close, state: () => v };
})();
