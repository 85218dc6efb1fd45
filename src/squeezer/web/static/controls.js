/* The settings form, built from GET /v1/options (the options model, squeezer.engines.options):
   the five levels with what each means for each kind of file, the options every file takes,
   and one group of controls per format family. Nothing here names a format: a family the
   model gains (video, audio, archives) gets its controls and its level descriptions by itself.

   SqueezerControls.build(described, {onChange}) fills #presets, #describe-for and #groups;
   SqueezerControls.value() is the request's `options` (only what differs from the model's
   defaults, nested by group); familyOf(fileName, mime) says which family a file belongs to. */
(function () {
  "use strict";

  const STORE = "squeezer.settings.v2";
  const $ = (sel, root) => (root || document).querySelector(sel);
  let model = null;
  let family = null; // the family whose level descriptions are shown
  let onChange = () => {};

  /** Fallback for a server too old to answer GET /v1/options. */
  const FALLBACK = { levels: ["lossless", "low", "medium", "high", "extreme"], default_level: "medium",
    formats: [], groups: {}, options: [] };

  function label(name) {
    const words = name.replace(/_/g, " ").replace(/\bdpi\b/gi, "DPI").replace(/\bmrc\b/gi, "MRC")
      .replace(/\bjbig2\b/gi, "JBIG2").replace(/\bjavascript\b/gi, "JavaScript");
    return words.charAt(0).toUpperCase() + words.slice(1);
  }

  /** "For screens and office printing: images above 150 dpi …" -> [plain head, details]. */
  function splitSummary(text) {
    const i = (text || "").indexOf(":");
    if (i < 0) return [text || "", ""];
    return [text.slice(0, i), text.slice(i + 1).trim()];
  }

  function saved() {
    try { return JSON.parse(localStorage.getItem(STORE) || "{}") || {}; } catch (e) { return {}; }
  }

  function save() {
    const values = {};
    for (const input of document.querySelectorAll("[data-option]")) {
      const v = read(input);
      if (v !== undefined) values[input.dataset.option] = v;
    }
    const level = $('input[name="level"]:checked');
    const data = { values };
    if (level && level.value !== model.default_level) data.level = level.value;
    localStorage.setItem(STORE, JSON.stringify(data));
  }

  /* ---------- levels ---------- */

  function buildLevels() {
    const box = $("#presets");
    box.replaceChildren();
    const chosen = saved().level || model.default_level;
    for (const value of model.levels) {
      const id = "level-" + value;
      const wrap = document.createElement("div");
      wrap.className = "preset";
      const input = document.createElement("input");
      Object.assign(input, { type: "radio", name: "level", value, id, checked: value === chosen });
      input.setAttribute("aria-describedby", id + "-help");
      input.addEventListener("change", () => { save(); onChange(); });
      const lab = document.createElement("label");
      lab.htmlFor = id;
      const title = document.createElement("span");
      title.className = "preset-name";
      title.textContent = label(value) + (value === model.default_level ? " (recommended)" : "");
      const help = document.createElement("span");
      help.className = "preset-help";
      help.id = id + "-help";
      const more = document.createElement("span");
      more.className = "preset-more";
      help.append(document.createElement("span"), more);
      lab.append(title, help);
      wrap.append(input, lab);
      box.append(wrap);
    }
    if (!$('input[name="level"]:checked') && box.querySelector("input")) {
      box.querySelector('input[value="' + model.default_level + '"]').checked = true;
    }
    const select = $("#describe-for");
    select.replaceChildren();
    for (const f of model.formats) {
      const option = document.createElement("option");
      option.value = f.name;
      option.textContent = f.title;
      select.append(option);
    }
    $("#describe-row").hidden = model.formats.length < 2;
    select.addEventListener("change", () => describeFor(select.value));
    describeFor(model.formats.length ? model.formats[0].name : null);
  }

  /** Show what each level means for the family ``name``. */
  function describeFor(name) {
    family = model.formats.find((f) => f.name === name) || null;
    if (family) $("#describe-for").value = family.name;
    for (const value of model.levels) {
      const help = document.getElementById("level-" + value + "-help");
      if (!help) continue;
      const [head, rest] = splitSummary(family ? family.levels[value] : "");
      help.firstChild.textContent = head ? head + (rest ? "." : "") : "";
      help.lastChild.textContent = rest ? " " + rest : "";
    }
  }

  /* ---------- option controls ---------- */

  /** The control for one option spec (GET /v1/options `options[]`). */
  function control(spec) {
    const id = "opt-" + spec.name.replace(/\./g, "-");
    const field = document.createElement("div");
    field.className = "field field-" + spec.type;
    const lab = document.createElement("label");
    lab.htmlFor = id;
    lab.textContent = label(spec.name.split(".").pop());
    const hint = document.createElement("p");
    hint.className = "hint";
    hint.id = id + "-help";
    hint.textContent = spec.description;
    let input;
    if (spec.type === "boolean" && !spec.nullable) {
      input = document.createElement("input");
      input.type = "checkbox";
      input.checked = !!spec.default;
      field.classList.add("check");
      field.append(input, lab, hint);
    } else if (spec.type === "boolean" || spec.type === "enum") {
      input = document.createElement("select");
      const choices = spec.type === "boolean" ? [["", "As the level decides"], ["true", "On"], ["false", "Off"]]
        : (spec.nullable ? [["", "As the level decides"]] : []).concat((spec.enum || []).map((v) => [v, v]));
      for (const [v, text] of choices) {
        const o = document.createElement("option");
        o.value = v;
        o.textContent = text;
        input.append(o);
      }
      input.value = spec.default === null || spec.default === undefined ? "" : String(spec.default);
      field.append(lab, input, hint);
    } else if (spec.type === "list" && (spec.enum || []).length) {
      input = document.createElement("fieldset");
      input.className = "multi";
      const legend = document.createElement("legend");
      legend.textContent = lab.textContent;
      input.append(legend);
      for (const v of spec.enum) {
        const l = document.createElement("label");
        const box = document.createElement("input");
        box.type = "checkbox";
        box.value = v;
        box.checked = (spec.default || []).includes(v);
        l.append(box, " " + v);
        input.append(l);
      }
      field.append(input, hint);
    } else {
      input = document.createElement("input");
      const numeric = spec.type === "integer" || spec.type === "number";
      input.type = numeric ? "number" : "text";
      if (numeric) {
        input.inputMode = "numeric";
        if (spec.minimum !== undefined) input.min = spec.minimum;
        if (spec.maximum !== undefined) input.max = spec.maximum;
        input.step = spec.type === "integer" ? "1" : "any";
      }
      input.autocomplete = "off";
      input.spellcheck = false;
      input.placeholder = spec.default !== null && spec.default !== undefined ? String(spec.default)
        : spec.type === "size" ? "e.g. 500KB or 2MB" : spec.syntax ? spec.syntax : "as the level decides";
      if (spec.default !== null && spec.default !== undefined) input.value = String(spec.default);
      field.append(lab, input, hint);
    }
    input.id = id;
    input.dataset.option = spec.name;
    input.dataset.type = spec.type;
    input.dataset.default = JSON.stringify(spec.default === undefined ? null : spec.default);
    input.setAttribute("aria-describedby", hint.id);
    input.addEventListener("change", () => { save(); onChange(); });
    return field;
  }

  /** The value a control holds, as the API takes it (undefined: empty). */
  function read(input) {
    const type = input.dataset.type;
    if (input.tagName === "FIELDSET") {
      return [...input.querySelectorAll("input:checked")].map((b) => b.value);
    }
    if (input.type === "checkbox") return input.checked;
    const raw = input.value.trim();
    if (raw === "") return undefined;
    if (type === "boolean") return raw === "true";
    if (type === "integer" || type === "number") return Number(raw);
    return raw;
  }

  function write(input, value) {
    if (input.tagName === "FIELDSET") {
      for (const b of input.querySelectorAll("input")) b.checked = (value || []).includes(b.value);
    } else if (input.type === "checkbox") {
      input.checked = !!value;
    } else {
      input.value = value === null || value === undefined ? "" : String(value);
    }
  }

  function buildGroups() {
    const box = $("#groups");
    box.replaceChildren();
    const specs = model.options.filter((o) => o.name !== "level" && o.name !== "password" && o.name !== "preset");
    const sections = [[null, "For every file"], ...Object.entries(model.groups || {})];
    for (const [group, title] of sections) {
      const mine = specs.filter((o) => (o.group || null) === group);
      if (!mine.length) continue;
      const set = document.createElement("details");
      set.className = "group";
      set.dataset.group = group || "common";
      if (!group) set.open = true;
      const summary = document.createElement("summary");
      summary.textContent = group ? title : title;
      set.append(summary);
      const grid = document.createElement("div");
      grid.className = "grid";
      for (const spec of mine) grid.append(control(spec));
      set.append(grid);
      box.append(set);
    }
    const values = saved().values || {};
    for (const input of document.querySelectorAll("[data-option]")) {
      if (input.dataset.option in values) write(input, values[input.dataset.option]);
    }
  }

  function reset() {
    localStorage.removeItem(STORE);
    buildLevels();
    buildGroups();
    onChange();
  }

  /** The request's options: the level, and each control whose value is not the model's default. */
  function value() {
    const level = $('input[name="level"]:checked');
    const out = { level: level ? level.value : (model ? model.default_level : "medium") };
    for (const input of document.querySelectorAll("[data-option]")) {
      const v = read(input);
      const def = JSON.parse(input.dataset.default);
      if (v === undefined || JSON.stringify(v) === JSON.stringify(def)) continue;
      const path = input.dataset.option.split(".");
      if (path.length === 1) out[path[0]] = v;
      else (out[path[0]] = out[path[0]] || {})[path[1]] = v;
    }
    return out;
  }

  /** The family a file belongs to, by its name's extension or its type (null: unknown). */
  function familyOf(name, mime) {
    if (!model) return null;
    const ext = (name.match(/\.([^.]+)$/) || [])[1];
    const lower = (ext || "").toLowerCase();
    const aliases = { jpg: "jpeg", jpe: "jpeg", jfif: "jpeg", tif: "tiff", heif: "heic", htm: "html" };
    const fmt = aliases[lower] || lower;
    for (const f of model.formats) {
      if (f.formats.includes(fmt)) return f;
    }
    const major = (mime || "").split("/")[0];
    return model.formats.find((f) => f.name === major) || null;
  }

  /** "PDF documents, images, video, audio, documents, … and website bundles": what the
   * families' titles name, in the model's words, as one list (a title that is itself a list,
   * "Documents, e-books, archives and website bundles", is split into its parts). */
  function accepts() {
    if (!model || !model.formats.length) return "";
    // "Images" -> "images" inside a sentence; "PDF documents" keeps its capitals
    const lower = (t) => (/^.[a-z]/.test(t) ? t.charAt(0).toLowerCase() + t.slice(1) : t);
    const words = model.formats.flatMap((f) => f.title.split(/, | and /).map((t) => lower(t.trim())));
    return window.SqueezerWords.list([...new Set(words)]);
  }

  /** [[family title, "JPEG, PNG, …"], …]: every format each family takes, by its short name. */
  function formatsByFamily() {
    if (!model) return [];
    const short = (x) => {
      const name = window.SqueezerWords.formatName(x);
      return name.includes(" ") ? x.toUpperCase() : name; // "Word document" -> DOCX
    };
    return model.formats.map((f) => [f.title, [...new Set(f.formats.map(short))].join(", ")]);
  }

  function build(described, hooks) {
    model = described && Array.isArray(described.levels) ? described : FALLBACK;
    model.formats = model.formats || [];
    model.options = model.options || [];
    onChange = (hooks && hooks.onChange) || onChange;
    buildLevels();
    buildGroups();
    $("#reset").addEventListener("click", reset);
  }

  window.SqueezerControls = {
    build, value, familyOf, describeFor, accepts, formatsByFamily, splitSummary,
    model: () => model,
  };
})();
