/* What a result means, in plain words first and the engine's own terms on demand.

   plain(result)   -> [[sentence, css class], ...]: what a person needs to know.
   details(result) -> a DOM node: the engine's report (steps, codecs, qualities, a table of
                      members for archives), for whoever wants it.
   A report is read by its `kind` (pdf reports have none; image, video, audio, archive, and
   whatever a new engine reports): a family the page does not know still gets its sizes, its
   `actions`, `warnings` and every plain field of its report. */
(function () {
  "use strict";

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

  /** "about 40 s left", rounded so the number does not flicker. */
  function fmtLeft(seconds) {
    if (!Number.isFinite(seconds) || seconds < 0) return "";
    if (seconds < 10) return "a few seconds left";
    if (seconds < 60) return "about " + Math.round(seconds / 5) * 5 + " s left";
    return "about " + fmtDuration(Math.round(seconds / 30) * 30) + " left";
  }

  function fmtClock(date) {
    return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  /** 3:07 or 1:02:03 */
  function fmtPlaytime(seconds) {
    seconds = Math.round(seconds || 0);
    const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    const two = (n) => String(n).padStart(2, "0");
    return h ? h + ":" + two(m) + ":" + two(s) : m + ":" + two(s);
  }

  function capitalize(s) { return s ? s.charAt(0).toUpperCase() + s.slice(1) : s; }
  function plural(n, one, many) { return n + " " + (n === 1 ? one : (many || one + "s")); }
  function list(items) {
    items = items.filter(Boolean);
    if (items.length <= 1) return items.join("");
    return items.slice(0, -1).join(", ") + " and " + items[items.length - 1];
  }

  const FORMAT_NAMES = {
    jpeg: "JPEG", png: "PNG", gif: "GIF", webp: "WebP", avif: "AVIF", heic: "HEIC", tiff: "TIFF",
    bmp: "BMP", svg: "SVG", pdf: "PDF", mp4: "MP4", mpegts: "MPEG-TS", mov: "MOV", mkv: "MKV", webm: "WebM",
    mp3: "MP3", m4a: "M4A", aac: "AAC", wav: "WAV", flac: "FLAC", ogg: "Ogg", opus: "Opus",
    docx: "Word document", xlsx: "Excel workbook", pptx: "PowerPoint presentation",
    odt: "OpenDocument text", ods: "OpenDocument spreadsheet", odp: "OpenDocument presentation",
    epub: "EPUB e-book", zip: "ZIP archive",
    docm: "Word document with macros", dotx: "Word template", xlsm: "Excel workbook with macros",
    xltx: "Excel template", pptm: "PowerPoint presentation with macros", ppsx: "PowerPoint slide show",
    potx: "PowerPoint template", odg: "OpenDocument drawing", ott: "OpenDocument text template",
    ots: "OpenDocument spreadsheet template", otp: "OpenDocument presentation template",
    jar: "Java archive (JAR)", apk: "Android app (APK)", "7z": "7-Zip archive",
    tar: "tar archive", "tar.gz": "tar.gz archive", "tar.xz": "tar.xz archive",
    "tar.zst": "tar.zst archive", "tar.bz2": "tar.bz2 archive", gz: "gzip file", xz: "xz file",
    zst: "Zstandard file", m4v: "M4V", "3gp": "3GP", ogv: "Ogg video", avi: "AVI",
    aiff: "AIFF", mka: "MKA", weba: "WebA",
  };
  const CODECS = {
    h264: "H.264", hevc: "H.265 (HEVC)", h265: "H.265 (HEVC)", av1: "AV1", vp9: "VP9", vp8: "VP8",
    mpeg4: "MPEG-4", aac: "AAC", opus: "Opus", mp3: "MP3", flac: "FLAC", vorbis: "Vorbis",
    pcm_s16le: "uncompressed PCM", alac: "Apple Lossless", h263: "H.263", theora: "Theora",
    msmpeg4v3: "MPEG-4 (Microsoft)", mpeg2video: "MPEG-2", amr_nb: "AMR-NB", amr_wb: "AMR-WB",
    ac3: "AC-3", eac3: "E-AC-3", pcm_s16be: "uncompressed PCM", pcm_s24le: "uncompressed PCM",
  };
  function formatName(f) { return f ? (FORMAT_NAMES[f] || f.toUpperCase()) : ""; }
  function codecName(c) { return c ? (CODECS[c] || c) : ""; }

  /* ---------- plain words ---------- */

  function plain(res) {
    const r = res.report || {};
    const lines = [];
    const kept = res.original_kept || r.original_kept;
    if (kept && r.signed) {
      // not "as small as it gets": re-packing would have broken its signature
      lines.push(["It is signed, so you get it back unchanged: re-packing it would break the signature.", "note"]);
    } else if (kept) {
      lines.push(["Already as small as it gets: you get your original file back, unchanged.", "note"]);
    }
    const kind = r.kind || "pdf";
    const say = SAY[kind] || sayOther;
    if (!kept) say(r, lines, res);
    else if (kind === "pdf" && r.pages) lines.push([plural(r.pages, "page") + ".", "muted"]);
    if (r.target_size) {
      lines.push([r.target_reached
        ? "Fits the size you asked for (" + fmtBytes(r.target_size) + ")."
        : "Could not get under " + fmtBytes(r.target_size) + " without visible damage: this is as small as it gets.",
      r.target_reached ? "" : "warn"]);
    }
    // requested_changes names what was done besides compressing: removals, and changes the
    // kind's own lines already say (a conversion, a new size) or that are no removal
    const changes = r.requested_changes || [];
    const removed = changes.filter((c) => !NOT_REMOVALS.has(c));
    if (removed.length) lines.push(["Removed as you asked: " + list(removed.map(humanize)) + ".", ""]);
    if (changes.includes("linearize")) lines.push(["Arranged for fast web viewing, as you asked.", ""]);
    if (changes.includes("precompress")) lines.push(["Ready-compressed copies (.br, .gz) of the text files added for your web server, as you asked.", ""]);
    // what the first line already says is no warning to look up
    const warnings = (r.warnings || []).filter((w) => !(kept && /kept it\W*$/i.test(w)) &&
      !(kept && r.signed && /^the package is signed/i.test(w)));
    if (warnings.length) {
      lines.push([plural(warnings.length, "warning") + ": see the engine details.", "warn"]);
    }
    return lines;
  }

  /** requested_changes that are not removals (see plain()). */
  const NOT_REMOVALS = new Set(["convert", "resize", "linearize", "precompress"]);

  function humanize(name) { return String(name).replace(/^remove_/, "").replace(/_/g, " "); }

  const SAY = {
    pdf(r, lines) {
      const img = r.images || {};
      const done = [];
      if (img.recompressed) {
        const how = [img.downsampled ? img.downsampled + " at a lower resolution" : "",
          img.to_gray ? img.to_gray + " in gray" : ""].filter(Boolean);
        done.push(plural(img.recompressed, "picture") + " made smaller" + (how.length ? " (" + how.join(", ") + ")" : ""));
      }
      const dups = (img.deduplicated || 0) + (r.fonts_deduplicated || 0);
      if (dups) done.push(plural(dups, "duplicate") + " stored once");
      const scans = r.scan_pages || [];
      const layered = scans.filter((p) => p.method === "mrc").length;
      const bw = scans.filter((p) => p.method === "bitonal").length;
      if (layered) done.push(plural(layered, "scanned page") + " split into text and background");
      if (bw) done.push(plural(bw, "scanned page") + " stored in black and white");
      lines.push([done.length ? capitalize(list(done)) + "." : "The file's structure was packed more tightly.", ""]);
      if (r.pages) {
        lines.push([r.pages === 1 ? "Checked: the page opens, and its text reads the same."
          : "Checked: all " + r.pages + " pages open, and the text reads the same.", "muted"]);
      }
    },
    image(r, lines) {
      const converted = r.format_in && r.format_out && r.format_in !== r.format_out;
      // The image engine measures SSIMULACRA2 (100: identical; 85 is medium's floor); none: untouched pixels.
      const score = typeof r.score === "number" ? r.score : null;
      const lossless = score === null || score >= 99.5;
      if (converted) lines.push(["Converted from " + formatName(r.format_in) + " to " + formatName(r.format_out) + ".", ""]);
      const resized = (r.actions || []).find((a) => /^resized/.test(a));
      if (r.input && r.width && (r.input.width !== r.width || r.input.height !== r.height)) {
        lines.push(["Resized from " + r.input.width + " × " + r.input.height + " to " + r.width + " × " + r.height + " pixels.", ""]);
      } else if (resized) {
        lines.push([capitalize(resized) + ".", ""]);
      }
      if (r.format_out === "svg") {
        lines.push(["Tidied as text: comments and editor data removed, numbers written shorter.", ""]);
      } else if (lossless) {
        lines.push(["Every pixel is unchanged: only the way the file is stored was improved.", ""]);
      } else {
        lines.push([(score >= 85 ? "Looks the same as the original" : "Slightly softer than the original, if you look closely") +
          " (measured visual similarity " + score.toFixed(1) + " of 100).", ""]);
      }
      if ((r.metadata_removed || []).length) {
        lines.push(["Hidden data removed: " + list(r.metadata_removed.map((m) => (m.length <= 4 ? m.toUpperCase() : m))) + ".", "muted"]);
      }
      if ((r.metadata_kept || []).length) {
        lines.push(["Kept: " + list(r.metadata_kept) + ".", "muted"]);
      }
      if (r.width && r.height) {
        lines.push([r.width + " × " + r.height + " pixels" + (r.frames > 1 ? ", " + plural(r.frames, "frame") : "") + ".", "muted"]);
      }
    },
    video(r, lines) {
      const out = [r.width && r.height ? r.width + " × " + r.height : "", r.duration ? fmtPlaytime(r.duration) + " long" : ""];
      sayConverted(r, lines);
      if (r.method === "remux") {
        lines.push(["Re-packed without re-encoding: picture and sound are exactly the original's.", ""]);
      } else if (r.method === "encode") {
        lines.push(["Re-encoded as " + codecName(r.video_codec_out) + (r.video_codec_in && r.video_codec_in !== r.video_codec_out ? " (was " + codecName(r.video_codec_in) + ")" : "") + ".", ""]);
        if (r.vmaf) {
          lines.push([(r.vmaf >= 93 ? "Looks the same as the original" : r.vmaf >= 85 ? "Close to the original" : "Visibly softer than the original") +
            " (VMAF " + Math.round(r.vmaf) + " of 100, measured on sampled scenes).", ""]);
        }
      }
      if (out.some(Boolean)) lines.push([capitalize(out.filter(Boolean).join(", ")) + ".", "muted"]);
    },
    audio(r, lines) {
      sayConverted(r, lines);
      if (r.method === "flac") lines.push(["Re-packed losslessly as FLAC: the sound is exactly the original's.", ""]);
      else if (r.method === "remux") lines.push(["Re-packed without re-encoding: the sound is exactly the original's.", ""]);
      else if (r.method === "encode") {
        lines.push(["Re-encoded as " + codecName(r.codec_out) + (r.bitrate_out ? " at " + Math.round(r.bitrate_out / 1000) + " kbit/s" : "") +
          (r.codec_in && r.codec_in !== r.codec_out ? " (was " + codecName(r.codec_in) + ")" : "") + ".", ""]);
      }
      const facts = [r.duration ? fmtPlaytime(r.duration) + " long" : "", r.channels === 1 ? "mono" : r.channels === 2 ? "stereo" : r.channels ? r.channels + " channels" : ""];
      if (r.cover_art) facts.push("cover picture kept");
      if (facts.some(Boolean)) lines.push([capitalize(facts.filter(Boolean).join(", ")) + ".", "muted"]);
    },
    archive(r, lines) {
      const members = r.members || [];
      const smaller = members.filter((m) => m.bytes_after < m.bytes_before).length;
      const total = r.members_total || members.length;
      lines.push([(smaller ? plural(smaller, "file") + " of " + total + " inside made smaller" : "The files inside were packed more tightly") +
        ((r.dropped || []).length ? "; " + plural(r.dropped.length, "unused file") + " left out" : "") + ".", ""]);
      if (r.signed) lines.push(["It is signed: signed parts were left exactly as they were.", "muted"]);
      if ((r.verified || []).length) lines.push(["Checked: it opens and reads the same.", "muted"]);
    },
  };

  /** "Converted from MOV to MP4." when a media file comes back in another format. */
  function sayConverted(r, lines) {
    if (r.format_in && r.format_out && r.format_in !== r.format_out) {
      lines.push(["Converted from " + formatName(r.format_in) + " to " + formatName(r.format_out) + ".", ""]);
    }
  }

  function sayOther(r, lines) {
    const acts = (r.actions || []).slice(0, 3);
    lines.push([acts.length ? capitalize(acts.join("; ")) + "." : "Compressed.", ""]);
  }

  /* ---------- engine details ---------- */

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }

  function facts(rows) {
    const dl = el("dl", null, "facts");
    for (const [k, v] of rows) {
      if (v === undefined || v === null || v === "" || (Array.isArray(v) && !v.length)) continue;
      dl.append(el("dt", k), el("dd", Array.isArray(v) ? v.join(", ") : String(v)));
    }
    return dl;
  }

  function details(res) {
    const r = res.report || {};
    const box = document.createDocumentFragment();
    const kind = r.kind || "pdf";
    const rows = [["Engine", kind === "pdf" ? "PDF" : capitalize(kind)]];
    if (r.format_in) rows.push(["Format", formatName(r.format_in) + (r.format_out && r.format_out !== r.format_in ? " → " + formatName(r.format_out) : "")]);
    if (r.quality !== undefined && r.quality !== null) rows.push(["Quality", r.quality]);
    if (r.ssim !== undefined && r.ssim !== null) rows.push(["SSIM", r.ssim.toFixed(4)]);
    if (typeof r.score === "number") rows.push(["SSIMULACRA2", r.score.toFixed(1) + " (100: identical)"]);
    if (r.crf !== undefined && r.crf !== null) rows.push(["CRF", r.crf]);
    if (r.vmaf) rows.push(["VMAF", r.vmaf.toFixed(1) + " (min " + (r.vmaf_min || 0).toFixed(1) + ", " + (r.vmaf_sampled_frames || 0) + " sampled frames)"]);
    if (r.method) rows.push(["Method", r.method]);
    if (r.codec_out) rows.push(["Codec", codecName(r.codec_in) + " → " + codecName(r.codec_out)]);
    if (r.video_codec_out) rows.push(["Video", codecName(r.video_codec_in) + " → " + codecName(r.video_codec_out)]);
    if (r.container) rows.push(["Container rules", r.container]);
    const steps = Object.entries(r.steps || {}).filter(([, saved]) => saved > 0).sort((a, b) => b[1] - a[1]);
    if (steps.length && !res.original_kept) rows.push(["Saved by step", steps.map(([n, s]) => n.replace(/_/g, " ") + " " + fmtBytes(s))]);
    const img = r.images || {};
    if (img.seen) {
      const codecs = ["to_jpeg", "to_jbig2", "to_ccitt", "to_flate"].filter((k) => img[k]).map((k) => img[k] + " " + k.slice(3));
      rows.push(["Images", img.recompressed + " of " + img.seen + " recompressed" + (codecs.length ? " (" + codecs.join(", ") + ")" : "") +
        (img.skipped ? ", " + img.skipped + " kept" : "")]);
    }
    if (r.pages_classified) rows.push(["Pages", Object.entries(r.pages_classified).map(([k, v]) => v + " " + k).join(", ")]);
    if (r.candidates && Object.keys(r.candidates).length) {
      rows.push(["Tried", Object.entries(r.candidates).map(([k, v]) => k + " " + fmtBytes(v))]);
    }
    if (r.metadata_kept && r.metadata_kept.length) rows.push(["Metadata kept", r.metadata_kept]);
    if (r.settings && r.settings.level) rows.push(["Level", r.settings.level]);
    if (r.elapsed_seconds) rows.push(["Time", r.elapsed_seconds.toFixed(1) + " s"]);
    if (r.engine_versions) rows.push(["Versions", Object.entries(r.engine_versions).map(([k, v]) => k + " " + v)]);
    box.append(facts(rows));
    if ((r.actions || []).length) {
      box.append(el("p", "What was done:", "dhead"));
      const ul = el("ul", null, "dlist");
      for (const a of r.actions) ul.append(el("li", a));
      box.append(ul);
    }
    if ((r.scan_pages || []).length) {
      box.append(el("p", "Scanned pages:", "dhead"));
      const ul = el("ul", null, "dlist");
      for (const p of r.scan_pages.slice(0, 50)) {
        ul.append(el("li", "page " + p.page + ": " + p.content + " → " + p.method + (p.reason ? " (" + p.reason + ")" : "") + (p.ssim ? ", SSIM " + p.ssim.toFixed(3) : "")));
      }
      box.append(ul);
    }
    if ((r.warnings || []).length) {
      box.append(el("p", "Warnings:", "dhead"));
      const ul = el("ul", null, "dlist warn");
      for (const w of r.warnings) ul.append(el("li", w));
      box.append(ul);
    }
    if ((r.members || []).length) box.append(membersTable(r));
    if (r.input && r.input.streams) box.append(streamsTable(r));
    return box;
  }

  /** A container's members: what each is, its bytes before and after, what was done. */
  function membersTable(r) {
    const wrap = el("div", null, "tablewrap");
    const rows = [];
    const walk = (members, depth) => {
      for (const m of members) {
        rows.push([m, depth]);
        if (m.members && m.members.length && depth < 3) walk(m.members, depth + 1);
      }
    };
    walk(r.members, 0);
    const table = el("table", null, "members");
    const cap = el("caption", "Files inside (" + (r.members_total || r.members.length) + ")" +
      (rows.length > 300 ? ", the 300 largest shown" : ""));
    table.append(cap);
    const head = el("tr");
    for (const h of ["Name", "Type", "Before", "After", "What was done"]) {
      const th = el("th", h);
      th.scope = "col";
      head.append(th);
    }
    const thead = el("thead");
    thead.append(head);
    const tbody = el("tbody");
    rows.sort((a, b) => (b[1] === a[1] ? b[0].bytes_before - a[0].bytes_before : 0));
    for (const [m, depth] of rows.slice(0, 300)) {
      const tr = el("tr");
      const name = el("td", (depth ? "↳ ".padStart(depth * 2 + 2, " ") : "") + m.name + (m.renamed_to ? " → " + m.renamed_to : ""));
      tr.append(name, el("td", m.type), el("td", fmtBytes(m.bytes_before), "num"),
        el("td", m.bytes_after ? fmtBytes(m.bytes_after) : "—", "num"), el("td", m.action));
      if (m.bytes_after < m.bytes_before) tr.className = "smaller";
      tbody.append(tr);
    }
    table.append(thead, tbody);
    wrap.append(table);
    return wrap;
  }

  /** A media file's streams, before and after. */
  function streamsTable(r) {
    const wrap = el("div", null, "tablewrap");
    const table = el("table", null, "members");
    table.append(el("caption", "Streams"));
    const thead = el("thead"), tr = el("tr");
    for (const h of ["", "Type", "Codec", "Details"]) tr.append(el("th", h));
    thead.append(tr);
    const tbody = el("tbody");
    for (const [label, summary] of [["Before", r.input], ["After", r.output]]) {
      for (const s of (summary && summary.streams) || []) {
        const row = el("tr");
        const bits = [s.width && s.height ? s.width + "×" + s.height : "", s.fps ? s.fps.toFixed(2).replace(/\.?0+$/, "") + " fps" : "",
          s.sample_rate ? s.sample_rate + " Hz" : "", s.channels ? s.channels + " ch" : "",
          s.bitrate ? Math.round(s.bitrate / 1000) + " kbit/s" : "", s.language || "", s.hdr ? "HDR" : ""];
        row.append(el("td", label), el("td", s.type), el("td", codecName(s.codec)), el("td", bits.filter(Boolean).join(", ")));
        tbody.append(row);
      }
    }
    table.append(thead, tbody);
    wrap.append(table);
    return wrap;
  }

  /** The one-line name of what kind of file a result is (for the card's badge). */
  function kindLabel(res) {
    const r = (res && res.report) || {};
    return formatName(r.format_out || r.format_in || (r.kind ? "" : "pdf"));
  }

  window.SqueezerWords = {
    fmtBytes, fmtPercentSaved, fmtDuration, fmtLeft, fmtClock, fmtPlaytime, capitalize, plural, list,
    formatName, codecName, plain, details, kindLabel,
  };
})();
