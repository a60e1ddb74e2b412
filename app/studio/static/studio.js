/* Rule Studio: the few scripts of the pages (no library, nothing fetched from
   another host). Every value from the server is put in the page as text
   (textContent via h()), never as HTML. Calls the /admin/rules JSON endpoints. */
"use strict";

const CSRF = document.querySelector('meta[name="csrf-token"]').content;
const RULESET = document.body.dataset.ruleset || "";

/* An element with attributes and children (strings become text nodes). */
function h(tag, attrs, ...children) {
  const svg = ["svg", "rect", "text", "g", "title", "line"].includes(tag);
  const el = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag) : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "text") el.textContent = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const $ = (selector) => document.querySelector(selector);
const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

/* The "Working…" indicator, shown only for calls slower than half a second. */
let pending = 0;
let busyTimer = null;
function busy(on) {
  pending += on ? 1 : -1;
  const box = $("#busy");
  if (pending > 0 && !busyTimer) {
    busyTimer = setTimeout(() => { box.hidden = false; document.body.setAttribute("aria-busy", "true"); }, 500);
  } else if (pending === 0) {
    clearTimeout(busyTimer);
    busyTimer = null;
    box.hidden = true;
    document.body.removeAttribute("aria-busy");
  }
}

/* A JSON call with the session's CSRF token; throws Error(TMF message). */
async function api(method, url, body, quiet, extraHeaders) {
  if (!quiet) busy(true);
  try {
    const response = await fetch(url, {
      method, credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": CSRF,
                 ...(extraHeaders || {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = new Error(data.message || `${response.status} ${response.statusText}`);
      error.data = data;
      throw error;
    }
    return data;
  } finally {
    if (!quiet) busy(false);
  }
}

function showError(box, error) {
  box.textContent = error ? error.message : "";
  box.hidden = !error;
}

function table(headers, rows, rowClass) {
  return h("table", { class: "grid" },
    h("thead", {}, h("tr", {}, headers.map((title) => h("th", { scope: "col", text: title })))),
    h("tbody", {}, rows.map((cells, index) =>
      h("tr", { class: rowClass ? rowClass(index) : null }, cells.map((cell) => h("td", {}, cell))))));
}

/* A horizontal bar chart (inline SVG); series: [{key, label, css}]. */
function barChart(title, rows, label, series) {
  const max = Math.max(1, ...rows.flatMap((row) => series.map((s) => row[s.key] || 0)));
  const line = 18 * series.length + 8;
  const height = rows.length * line + 8;
  const svg = h("svg", { class: "chart", role: "img", "aria-label": title, viewBox: `0 0 640 ${height}`,
    width: 640, height }, h("title", { text: title }));
  rows.forEach((row, index) => {
    const top = index * line + 4;
    svg.append(h("text", { x: 0, y: top + 14, class: "label", text: label(row) }));
    series.forEach((s, k) => {
      const width = ((row[s.key] || 0) / max) * 360;
      svg.append(h("rect", { x: 220, y: top + k * 18 + 2, width: width.toFixed(1), height: 14, class: `bar ${s.css}` }));
      svg.append(h("text", { x: 226 + width, y: top + k * 18 + 14, class: "value", text: `${row[s.key] || 0} ${s.label}` }));
    });
  });
  return svg;
}

/* ------------------------------------------------------------------ playground */
function playgroundContext() {
  const pasted = $("#pasted").value.trim();
  if (pasted) return JSON.parse(pasted);
  const context = { time: $("#time").value.trim() };
  const segment = $("#segment").value;
  const characteristics = {};
  for (const line of $("#characteristics").value.split("\n")) {
    const at = line.indexOf("=");
    if (at > 0) characteristics[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  if (segment === "none" && !Object.keys(characteristics).length) {
    context.customer = "none";
  } else {
    context.customer = {};
    if (segment && segment !== "none") context.customer.segment = segment;
    if (Object.keys(characteristics).length) context.customer.characteristics = characteristics;
  }
  const selected = (id) => Array.from($(id).selectedOptions).map((option) => option.value);
  if (selected("#owns").length) context.owns = selected("#owns");
  if (selected("#cart").length) context.cart = selected("#cart");
  if ($("#channel").value) context.channel = $("#channel").value;
  if ($("#place").value.trim()) context.places = [{ id: $("#place").value.trim() }];
  return context;
}

function price(details) {
  return (details && details.prices || []).map((p) =>
    `${p.value} ${p.unit || ""}${p.type === "recurring" ? ` / ${p.period || "period"}` : p.type === "oneTime" ? " one-time" : ""}`).join(", ");
}

/* "6542 TMFone Case": an id with its name from `names` (id -> name), the id
   alone when the name is unknown (people do not read ids). */
const named = (names, id) => (names && names[id] ? `${id} ${names[id]}` : `${id}`);
const namedList = (names, list) => (list && list.length ? list.map((id) => named(names, id)).join(", ") : "(nothing)");

function answerPanel(data) {
  const offerings = data.offerings || {};
  const rs = data.ruleset;
  const offeringNames = Object.fromEntries(Object.entries(offerings).map(([id, d]) => [id, d.name]));
  const offering = (id) => named(offeringNames, id);
  const facts = data.facts || {};
  const situation = [
    `channel ${facts.channel === null || facts.channel === undefined ? "(none)"
      : namedList(data.channels, [].concat(facts.channel))}`,
    `customer ${facts.customer || ""}${facts.segment ? `, segment ${facts.segment}` : ""}`,
    `owns ${namedList(offeringNames, facts.owns)}`, `cart ${namedList(offeringNames, facts.cart)}`];
  const items = data.items.map((item) => {
    const details = offerings[item.offering.id] || {};
    return h("li", { "data-offering": item.offering.id },
      h("strong", { text: `${item.offering.id} ${item.offering.name || ""}` }),
      h("span", { class: "muted", text: ` · ${(details.categories || []).join(", ")} · ${price(details)}` }),
      h("div", { class: "muted", text: `priority ${item.rulePriority}, rules ${item.ruleIds.join(", ")} (${item.kinds.join(", ")})` }));
  });
  const rules = table(["Rule", "Fired", "Why"], data.rules.map((rule) => [
    `${rule.id} ${rule.name || ""} (line ${rule.line})`,
    h("span", { class: rule.fired ? "pass" : "fail-text", text: rule.fired ? "yes" : "no" }),
    rule.failedAt && rule.failedAt.length
      ? h("span", {}, rule.reason + ": ", rule.failedAt.map((f) => h("div", { text: `${f.condition} (line ${f.line}:${f.column})` })))
      : rule.reason,
  ]), (index) => (data.rules[index].fired ? "active" : null));
  const steps = data.policies.map((step) => {
    if (step.step === "proposed") {
      return h("li", {}, h("strong", { text: "proposed: " }),
        step.items.map((p) => `${offering(p.offering)} (${p.rule}, priority ${p.priority})`).join(", ") || "(nothing)");
    }
    const dropped = step.dropped || [];
    return h("li", {}, h("strong", { text: `${step.policy}. ${step.step}: ` }),
      dropped.length ? dropped.map((d) => h("div", { text: `dropped ${offering(d.offering)} (${d.rule}): ${d.reason}, ${d.detail}` }))
        : "nothing dropped");
  });
  const experiment = data.experiment;
  return h("section", { class: "card answer", "data-version": rs.version },
    h("h2", { text: `${rs.id} ${rs.version}` }),
    experiment ? h("p", { class: "experiment", "data-experiment": experiment.id, "data-arm": experiment.arm,
      text: experiment.holdout
        ? `Experiment ${experiment.id}, arm ${experiment.arm}: a holdout, answered with no items (explained with the active version ${rs.version})`
        : `Experiment ${experiment.id}, arm ${experiment.arm}: answered by version ${rs.version}` }) : "",
    h("ul", { class: "situation muted" }, situation.map((line) => h("li", { text: line }))),
    h("h3", { text: "Items" }),
    items.length ? h("ol", { class: "items" }, items) : h("p", { text: "(nothing recommended)" }),
    h("h3", { text: "Rules" }), rules,
    h("h3", { text: "Policy steps" }), h("ol", {}, steps),
    h("details", {}, h("summary", { text: "As a case context" }), h("pre", { text: JSON.stringify(data.context, null, 1) })));
}

function initPlayground() {
  const error = $("#playground-error");
  $("#playground-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(error, null);
    let context;
    try { context = playgroundContext(); } catch (e) { showError(error, new Error(`The pasted text is not JSON: ${e.message}`)); return; }
    /* version A "" is "as served": no version asked for, so a TMF680 query
       in a running experiment is explained by its arm's version */
    const versions = [$("#version-a").value, ...[$("#version-b").value].filter(Boolean)];
    $("#answers").replaceChildren();
    try {
      const answers = await Promise.all(versions.map((version) =>
        api("POST", `/admin/rules/explain?rulesetId=${encodeURIComponent(RULESET)}${version ? `&version=${encodeURIComponent(version)}` : ""}`, context)));
      $("#answers").replaceChildren(...answers.map(answerPanel));
      lastAnswer = answers[0];
      $("#save-case").hidden = false;
      $("#save-case-result").hidden = true;
      $("#answers").scrollIntoView({ block: "start" });
    } catch (e) { showError(error, e); }
  });
  /* "Save as case": the situation and the answer of the first version become
     a regression case in the working cases file. */
  let lastAnswer = null;
  $("#save-case").addEventListener("submit", async (event) => {
    event.preventDefault();
    const box = $("#save-case-result");
    try {
      const done = await api("POST", `/admin/rules/${encodeURIComponent(RULESET)}/cases`, {
        name: $("#case-name").value, context: lastAnswer.context,
        expect: lastAnswer.items.map((item) => item.offering.id) });
      box.className = "flash ok";
      box.textContent = `Added case ${done.name} to ${done.file} (line ${done.line}).`;
    } catch (e) {
      box.className = "flash error";
      box.textContent = `Not added: ${e.message}`;
    }
    box.hidden = false;
    box.scrollIntoView({ block: "nearest" });
  });
}

/* ------------------------------------------------------------------ cases */
function initCases() {
  const error = $("#cases-error");
  /* offering names beside the ids (people do not read ids) */
  let names = {};
  api("GET", "/admin/rules/vocabulary", undefined, true)
    .then((data) => { names = Object.fromEntries(data.offerings.map((o) => [o.id, o.name])); }).catch(() => {});
  const casesNamed = (list) => namedList(names, list);
  const run = async (event) => {
    if (event) event.preventDefault();
    showError(error, null);
    $("#cases-summary").textContent = "";
    $("#cases-result").replaceChildren();
    try {
      const data = await api("POST", "/admin/rules/cases",
        { rulesetId: RULESET, version: $("#cases-version").value, filter: $("#cases-filter").value || null });
      $("#cases-summary").textContent = `${data.passed} passed, ${data.failed} failed (${data.ruleset.id} ${data.ruleset.version}, ${data.cases})`;
      $("#cases-summary").className = `summary ${data.failed ? "fail-text" : "ok-text"}`;
      const rows = data.results.map((r) => [
        h("span", { class: r.passed ? "pass" : "fail-mark", text: r.passed ? "pass" : "FAIL" }),
        h("span", {}, r.name, h("div", { class: "muted", text: `line ${r.line}${r.description ? " · " + r.description : ""}` })),
        r.expected === null ? `absent: ${casesNamed(r.absent)}` : casesNamed(r.expected), casesNamed(r.actual),
        h("div", {}, [...r.messages, ...r.why].map((line) => h("div", { text: line }))),
      ]);
      const coverage = data.coverage.filter((c) => c.counted);
      $("#cases-result").replaceChildren(
        table(["Result", "Case", "Expected", "Actual", "Why"], rows, (i) => (data.results[i].passed ? null : "fail")),
        h("h2", { text: `Coverage: ${coverage.filter((c) => c.cases > 0).length} of ${coverage.length} rules fired in at least one case (${data.coveragePercent}%)` }),
        barChart("Cases that fire each rule", data.coverage, (c) => `${c.rule} ${c.name || ""}`,
          [{ key: "cases", label: "cases", css: "" }]));
    } catch (e) { showError(error, e); }
  };
  $("#cases-form").addEventListener("submit", run);
}

/* ------------------------------------------------------------------ impact */
function changeLines(change, names) {
  const item = (c) => `${c.offering} ${c.name}`;
  return h("div", {},
    h("div", { text: `before  ${namedList(names, change.old)}` }), h("div", { text: `after   ${namedList(names, change.new)}` }),
    change.gained.map((c) => h("div", { class: "pass", text: `gained  ${item(c)} at #${c.newRank} (rules ${c.newRules.join(", ")})` })),
    change.lost.map((c) => h("div", { class: "fail-text", text: `lost    ${item(c)} (was #${c.oldRank}, rules ${c.oldRules.join(", ")})` })),
    change.reordered.map((c) => h("div", { text: `moved   ${item(c)} #${c.oldRank} -> #${c.newRank}` })),
    change.reasonsChanged.map((c) => h("div", { text: `reasons ${item(c)}: ${c.oldRules.join(", ")} -> ${c.newRules.join(", ")}` })));
}

function initImpact() {
  const error = $("#impact-error");
  $("#impact-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(error, null);
    const file = $("#impact-file").files[0];
    $("#impact-result").replaceChildren();
    const body = { rulesetId: RULESET, old: $("#impact-old").value, new: $("#impact-new").value,
      cases: $("#impact-cases").checked, recent: Number($("#impact-recent").value || 0),
      recorded: Number($("#impact-recorded").value || 0) };
    if ($("#impact-recorded-channel").value.trim()) body.recordedChannel = $("#impact-recorded-channel").value.trim();
    try {
      if (file) { body.contexts = await file.text(); body.contextsName = file.name; }
      const data = await api("POST", "/admin/rules/impact", body);
      const s = data.summary;
      const changed = data.contexts.filter((c) => c.changed);
      $("#impact-result").replaceChildren(
        h("p", { class: "summary", id: "impact-summary",
          text: `${s.changed} of ${s.contexts} situations change: ${s.gained} items gained, ${s.lost} lost, reordered in ${s.reordered}, reasons changed in ${s.reasonsChanged}` }),
        h("p", { class: "muted", text: data.skippedQueries ? `${data.skippedQueries} stored queries could not be read as situations and were skipped.` : "" }),
        data.recordedTraffic ? h("p", { class: "summary", id: "impact-recorded-summary", text: data.recordedTraffic.line }) : "",
        table(["Source", "Situations", "Changed"], data.sources.map((x) => [x.source, String(x.contexts), String(x.changed)])),
        h("h2", { text: "Rules" }),
        data.rules.length ? table(["Rule", "Change", "Fields", "Line"], data.rules.map((r) => [r.rule, r.change, r.fields.join(", "), r.line === null ? "" : String(r.line)]))
          : h("p", { text: "No rule changes." }),
        h("h2", { text: "Offerings gained and lost" }),
        data.offerings.length ? barChart("How often each offering is gained and lost", data.offerings, (o) => `${o.offering} ${o.name}`,
          [{ key: "gained", label: "gained", css: "gained" }, { key: "lost", label: "lost", css: "lost" }]) : h("p", { text: "None." }),
        h("h2", { text: `Changed situations (${changed.length})` }),
        ...changed.map((c) => {
          const details = h("details", {}, h("summary", { text: `${c.name} (${c.source})` }));
          details.addEventListener("toggle", () => {      // built on demand
            if (details.open && details.children.length === 1) details.append(changeLines(c, data.names));
          });
          return details;
        }));
    } catch (e) { showError(error, e); }
  });
}

/* ------------------------------------------------------------------ editor */
function initEditor() {
  const source = $("#source");
  const gutter = $("#gutter");
  const list = $("#completions");
  const url = `/admin/rules/${encodeURIComponent(RULESET)}/working-copy`;
  let findings = [];
  let vocabulary = { keys: [], offerings: [], categories: [], channels: [] };
  let lintTimer = null;
  let lintSeq = 0;

  const lineStart = (text, line) => {
    let at = 0;
    for (let n = 1; n < line && at >= 0; n += 1) at = text.indexOf("\n", at) + 1 || -1;
    return Math.max(0, at);
  };
  const goTo = (line, column) => {
    const at = lineStart(source.value, line) + Math.max(0, column - 1);
    source.focus();
    source.setSelectionRange(at, at);
    source.scrollTop = Math.max(0, (line - 5) * 18);
  };
  const drawGutter = () => {
    const count = source.value.split("\n").length;
    const marks = {};
    for (const f of findings) if (!marks[f.line] || f.severity === "error") marks[f.line] = f;
    const lines = [];
    for (let n = 1; n <= count; n += 1) {
      const f = marks[n];
      lines.push(f ? h("span", { class: `mark-${f.severity}`, title: `${f.line}:${f.column} ${f.message}`, text: `${n}` }) : `${n}`, "\n");
    }
    gutter.replaceChildren(...lines);
    gutter.scrollTop = source.scrollTop;
  };
  const showFindings = (data) => {
    findings = data.problems;
    $("#lint-status").textContent = `${plural(data.errors, "error")}, ${plural(data.warnings, "warning")}`;
    $("#lint-status").className = `summary ${data.errors ? "fail-text" : "ok-text"}`;
    $("#findings").replaceChildren(...findings.map((f) => h("li", {},
      h("button", { type: "button", onclick: () => goTo(f.line, f.column), text: `${f.line}:${f.column}` }), " ",
      h("span", { class: f.severity, text: f.severity }), " ",
      `${f.about || ""}${f.message} [${f.code || ""}]`,
      f.hint ? h("div", { class: "fix", text: `fix: ${f.hint}` }) : "")));
    drawGutter();
  };
  const lintNow = async () => {
    const seq = ++lintSeq;
    try {
      const data = await api("POST", "/admin/rules/lint", { rulesetId: RULESET, text: source.value }, true);
      if (seq === lintSeq) showFindings(data);
    } catch (e) { $("#lint-status").textContent = e.message; }
  };

  /* completion: the word before the caret, candidates by what the line is about */
  const wordBefore = () => {
    const upTo = source.value.slice(0, source.selectionStart);
    const match = /[A-Za-z0-9_-]*$/.exec(upTo);
    const line = upTo.slice(upTo.lastIndexOf("\n") + 1);
    return { word: match[0], start: source.selectionStart - match[0].length, line };
  };
  const candidates = ({ word, line }) => {
    const before = line.slice(0, line.length - word.length);
    const w = word.toLowerCase();
    const pick = (items) => items.filter((c) => c.value.toLowerCase().startsWith(w) || c.label.toLowerCase().includes(w)).slice(0, 12);
    /* the key being edited: the last key before the caret on this line, past
       the test modes (`cart: {any_of: [` is about the cart); `priority: ` is
       not about an offering although the line names one */
    const keys = [...before.matchAll(/([A-Za-z_]+)\s*:/g)].map((m) => m[1])
      .filter((k) => !["any_of", "all_of", "none_of", "not", "empty"].includes(k));
    const key = keys.length ? keys[keys.length - 1] : "";
    const inValue = /[:\[,"' ]\s*["']?$/.test(before);
    if (inValue && /^(offering|owns|cart|in_cart|recommend)$/.test(key)) {
      return pick(vocabulary.offerings.map((o) => ({ value: o.id, label: `${o.id} ${o.name}${o.status !== "Active" ? " (" + o.status + ")" : ""}` })));
    }
    if (inValue && key === "channel") {
      return pick(vocabulary.channels.map((c) => ({ value: c.id, label: `${c.id} ${c.name}` })));
    }
    if (inValue && /^(cart|owns)?_?categor\w*$/.test(key)) {
      return pick(vocabulary.categories.map((c) => ({ value: c, label: c })));
    }
    if (key && !/\{\s*$|,\s*$/.test(before)) return [];           // another key's value: no ids to offer
    if (/^\s*(- )?$/.test(before)) {
      return pick(vocabulary.keys.map((k) => ({ value: `${k.name}: `, label: `${k.name}${k.description ? " — " + k.description : ""}` })));
    }
    return [];
  };
  let options = [];
  let selected = 0;
  const closeList = () => { list.hidden = true; options = []; source.removeAttribute("aria-activedescendant"); };
  const renderList = () => {
    list.replaceChildren(...options.map((o, i) => h("li", {
      id: `completion-${i}`, role: "option", "aria-selected": i === selected ? "true" : "false", text: o.label,
      onmousedown: (event) => { event.preventDefault(); selected = i; accept(); },
    })));
    source.setAttribute("aria-activedescendant", `completion-${selected}`);
    list.hidden = false;
    // below the caret's line, or above it near the bottom (line height 18 px, monospace ~7.8 px)
    const before = source.value.slice(0, source.selectionStart).split("\n");
    const below = before.length * 18 + 8 - source.scrollTop;
    const top = below + list.offsetHeight > source.clientHeight ? below - 18 - list.offsetHeight : below;
    list.style.top = `${Math.max(0, top)}px`;
    list.style.left = `${Math.min(gutter.offsetWidth + 8 + before[before.length - 1].length * 7.8 - source.scrollLeft,
      source.clientWidth - 200)}px`;
  };
  const openList = (force) => {
    const at = wordBefore();
    options = (at.word || force) ? candidates(at) : [];
    selected = 0;
    if (options.length && !(options.length === 1 && options[0].value.replace(/: $/, "") === at.word)) renderList();
    else closeList();
  };
  const accept = () => {
    const choice = options[selected];
    const at = wordBefore();
    source.setRangeText(choice.value, at.start, source.selectionStart, "end");
    closeList();
    source.dispatchEvent(new Event("input"));
  };
  source.addEventListener("keydown", (event) => {
    if (event.key === " " && event.ctrlKey) { event.preventDefault(); openList(true); return; }
    if (list.hidden) return;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      selected = (selected + (event.key === "ArrowDown" ? 1 : options.length - 1)) % options.length;
      renderList();
    } else if (event.key === "Enter" || event.key === "Tab") { event.preventDefault(); accept(); }
    else if (event.key === "Escape") { event.preventDefault(); closeList(); }
  });
  source.addEventListener("input", (event) => {
    drawGutter();
    if (event.inputType && event.inputType.startsWith("insert") && event.data && /[A-Za-z0-9_-]/.test(event.data)) openList(false);
    else if (event.inputType) closeList();
    clearTimeout(lintTimer);
    lintTimer = setTimeout(lintNow, 400);
  });
  source.addEventListener("scroll", () => { gutter.scrollTop = source.scrollTop; });
  source.addEventListener("blur", () => setTimeout(closeList, 150));

  /* The working copy this edit started from (its ETag, kept in the hidden
     #base field): a save names it, so another person's save in between is
     refused with their change shown, never overwritten. */
  const base = $("#base");
  let savedText = null;
  const useVersion = (version) => {
    source.value = source.value.replace(/^version:.*$/m, `version: "${version}"`);
    drawGutter();
    lintNow();
  };
  $("#save-button").addEventListener("click", async () => {
    const box = $("#save-result");
    box.hidden = true;
    try {
      const data = await api("PUT", url, { text: source.value }, false, { "If-Match": `"${base.value}"` });
      base.value = data.etag;
      savedText = source.value;
      box.className = "flash ok";
      box.replaceChildren(...data.done.map((line) => h("div", { text: line })));
      showFindings(data.lint);
    } catch (e) {
      box.className = "flash error";
      const details = (e.data && e.data.details) || {};
      const parts = [h("div", { text: `Not saved: ${e.message}` })];
      if (e.data && e.data.code === "EDIT_CONFLICT") {
        parts.push(h("p", { text: "Their change (a diff of the working copy since you opened it):" }),
                   h("pre", { class: "diff", id: "conflict-diff", text: details.diff || "" }));
      } else if (e.data && e.data.code === "VERSION_RECORDED" && details.nextVersion) {
        parts.push(h("button", { type: "button", id: "use-next-version", text: `Use version ${details.nextVersion}`,
                                 onclick: () => useVersion(details.nextVersion) }));
      }
      box.replaceChildren(...parts);
    }
    box.hidden = false;
    box.scrollIntoView({ block: "nearest" });
  });
  /* Unsaved changes are not lost without a prompt (leaving, reloading, Back). */
  window.addEventListener("beforeunload", (event) => {
    if (savedText !== null && source.value !== savedText) {
      event.preventDefault();
      event.returnValue = "";
    }
  });

  api("GET", "/admin/rules/vocabulary").then((data) => { vocabulary = data; }).catch(() => {});
  api("GET", url).then((data) => {
    source.value = data.text;
    savedText = data.text;
    base.value = data.etag;
    drawGutter();
    lintNow();
  }).catch((e) => { $("#lint-status").textContent = e.message; });
}

const PAGES = { playground: initPlayground, cases: initCases, impact: initImpact, edit: initEditor };
const init = PAGES[document.body.dataset.page];
if (init) init();
