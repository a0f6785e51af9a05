/* safebench report: the item browser (filters, sort, pages, one item with every round).
 *
 * Every string in the data is untrusted (model answers, juror reasoning, labels, file names). The DOM
 * is built with createElement and textContent only, never innerHTML; attribute names are fixed here;
 * links only ever point at "#..." fragments of this page, and media only at the page's own data: URIs.
 * State lives in the URL fragment (#filter=status:error&q=text&item=<target>/<item id>), so a view can
 * be linked, and tests can set a filter through the URL. Other views (compare.js) add their own
 * key=value parts through SB.addHashPart; every view reads the one fragment and ignores the others' keys.
 */
(function () {
  "use strict";

  const DATA = JSON.parse(document.getElementById("report-data").textContent);
  const RECORDS = DATA.records;
  const TARGETS = DATA.targets;
  const STATUSES = ["decided", "hung", "error", "blocked"];
  const FILTERS = ["target", "category", "scenario", "verdict", "status", "split", "rounds"];

  // ------------------------------------------------------------------ DOM helpers (no innerHTML)

  function safeHref(value) {
    const text = String(value);
    return text.charAt(0) === "#" ? text : "#";
  }

  function safeMedia(uri, kind) {
    const text = typeof uri === "string" ? uri : "";
    return text.indexOf("data:" + kind + "/") === 0 ? text : null;
  }

  function el(tag, props, children) {
    const node = document.createElement(tag);
    if (props) {
      for (const key of Object.keys(props)) {
        const value = props[key];
        if (value === undefined || value === null || value === false) continue;
        if (key === "text") node.textContent = String(value);
        else if (key === "className") node.className = String(value);
        else if (key === "href") node.setAttribute("href", safeHref(value));
        else node.setAttribute(key, String(value)); // names are this file's, values are data
      }
    }
    for (const child of children || []) {
      if (child === null || child === undefined || child === false) continue;
      node.appendChild(typeof child === "string" || typeof child === "number" ? document.createTextNode(String(child)) : child);
    }
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function fmt(value, digits) {
    return typeof value === "number" ? value.toFixed(digits) : "–";
  }

  // ------------------------------------------------------------------ record accessors

  const get = {
    target: (r) => TARGETS[r.t].key,
    verdict: (r) => (r.u === true ? "unsafe" : r.u === false ? "safe" : "none"),
    status: (r) => r.st || "decided",
    split: (r) => (r.sp ? "split" : "unanimous"),
    rounds: (r) => String(r.n || 0),
  };

  function categoryName(id) {
    const c = DATA.categories[id];
    return c ? c.name : id;
  }

  function categoryAbbr(id) {
    const c = DATA.categories[id];
    return c ? c.abbr : id;
  }

  function scenarioName(id) {
    const s = DATA.scenarios[id];
    return s ? s.name : id;
  }

  function seat(r, slot) {
    const run = DATA.runs[TARGETS[r.t].run] || { slots: {} };
    return run.slots[String(slot)] || null;
  }

  function permalink(r) {
    return "#item=" + encodeURIComponent(get.target(r)) + "/" + encodeURIComponent(r.id);
  }

  const byKey = new Map();
  RECORDS.forEach((r, i) => byKey.set(get.target(r) + "\u0000" + r.id, i));

  let haystacks = null;
  function haystack(i) {
    if (haystacks === null) haystacks = new Array(RECORDS.length);
    if (haystacks[i] === undefined) {
      const r = RECORDS[i];
      const parts = [r.id, r.q, r.p, r.r, r.vr, r.e];
      for (const o of r.o || []) parts.push(o[6], o[8]);
      haystacks[i] = parts.filter(Boolean).join("\n").toLowerCase();
    }
    return haystacks[i];
  }

  function verdictBadge(r) {
    const status = get.status(r);
    if (status !== "decided") return el("span", { className: "badge " + status, text: status });
    const v = get.verdict(r);
    return el("span", { className: "badge " + v, text: v === "none" ? "–" : v });
  }

  // ------------------------------------------------------------------ state and the URL fragment

  const DEFAULT_SORT = { key: "order", dir: 1 };
  const state = { f: {}, q: "", sort: Object.assign({}, DEFAULT_SORT), page: 0, item: null };
  FILTERS.forEach((k) => (state.f[k] = ""));

  function parseHash() {
    const out = {};
    const hash = location.hash.replace(/^#/, "");
    if (hash.indexOf("=") < 0) return out; // a section anchor such as #items
    for (const part of hash.split("&")) {
      const eq = part.indexOf("=");
      if (eq > 0) out[part.slice(0, eq)] = part.slice(eq + 1);
    }
    return out;
  }

  function decode(text) {
    try {
      return decodeURIComponent(text);
    } catch (e) {
      return text;
    }
  }

  function applyParams(params, listToo) {
    if (listToo) {
      FILTERS.forEach((k) => (state.f[k] = ""));
      for (const pair of (params.filter || "").split(",")) {
        const colon = pair.indexOf(":");
        if (colon <= 0) continue;
        const key = decode(pair.slice(0, colon));
        if (FILTERS.indexOf(key) >= 0) state.f[key] = decode(pair.slice(colon + 1));
      }
      state.q = params.q ? decode(params.q) : "";
      const sort = (params.sort || "").split(":");
      state.sort = COLUMNS.some((c) => c.key === sort[0]) ? { key: sort[0], dir: sort[1] === "desc" ? -1 : 1 } : Object.assign({}, DEFAULT_SORT);
      state.page = Math.max(0, (parseInt(params.page || "1", 10) || 1) - 1);
    }
    state.item = null;
    if (params.item) {
      const slash = params.item.lastIndexOf("/");
      if (slash > 0) {
        const i = byKey.get(decode(params.item.slice(0, slash)) + "\u0000" + decode(params.item.slice(slash + 1)));
        if (i !== undefined) state.item = i;
      }
    }
  }

  const hashParts = []; // functions of the other views, each returning "key=value&..." or ""

  function hashFor() {
    const parts = [];
    const filters = FILTERS.filter((k) => state.f[k] !== "").map((k) => k + ":" + encodeURIComponent(state.f[k]));
    if (filters.length) parts.push("filter=" + filters.join(","));
    if (state.q) parts.push("q=" + encodeURIComponent(state.q));
    if (state.sort.key !== "order") parts.push("sort=" + state.sort.key + ":" + (state.sort.dir < 0 ? "desc" : "asc"));
    if (state.page > 0) parts.push("page=" + (state.page + 1));
    for (const part of hashParts) {
      const text = part();
      if (text) parts.push(text);
    }
    if (state.item !== null) parts.push(permalink(RECORDS[state.item]).slice(1));
    return "#" + parts.join("&");
  }

  function writeHash() {
    const hash = hashFor();
    if (hash === location.hash || (hash === "#" && !location.hash)) return;
    try {
      history.replaceState(null, "", hash === "#" ? location.pathname + location.search : hash);
    } catch (e) {
      /* some file:// set-ups refuse; the view still works, only its link is not updated */
    }
  }

  // ------------------------------------------------------------------ filtering and sorting

  function matching() {
    const q = state.q.trim().toLowerCase();
    const out = [];
    for (let i = 0; i < RECORDS.length; i++) {
      const r = RECORDS[i];
      let ok = true;
      for (const k of FILTERS) {
        const want = state.f[k];
        if (want === "") continue;
        const have = k === "category" ? r.c : k === "scenario" ? r.s : get[k](r);
        if (have !== want) {
          ok = false;
          break;
        }
      }
      if (ok && q && haystack(i).indexOf(q) < 0) ok = false;
      if (ok) out.push(i);
    }
    const column = COLUMNS.find((c) => c.key === state.sort.key);
    if (column && column.value) {
      const dir = state.sort.dir;
      out.sort((a, b) => {
        const x = column.value(RECORDS[a]);
        const y = column.value(RECORDS[b]);
        if (x < y) return -dir;
        if (x > y) return dir;
        return a - b; // stable: ties keep the run's order
      });
    }
    return out;
  }

  const VERDICT_ORDER = { unsafe: 2, safe: 1, none: 0 };
  const COLUMNS = [
    { key: "order", label: "#", value: null },
    { key: "target", label: "Target", value: (r) => r.t },
    { key: "id", label: "Item", value: (r) => r.id },
    { key: "category", label: "Category", value: (r) => categoryAbbr(r.c) },
    { key: "scenario", label: "Scenario", value: (r) => scenarioName(r.s) },
    { key: "query", label: "Query", value: (r) => r.q || "" },
    { key: "verdict", label: "Verdict", value: (r) => (get.status(r) === "decided" ? VERDICT_ORDER[get.verdict(r)] : -1 - STATUSES.indexOf(get.status(r))) },
    { key: "rating", label: "Rating", value: (r) => (typeof r.ra === "number" ? r.ra : -1) },
    { key: "rounds", label: "Rounds", value: (r) => r.n || 0 },
    { key: "calls", label: "Calls", value: (r) => r.ca || 0 },
    { key: "tokens", label: "Tokens", value: (r) => (r.tp || 0) + (r.tc || 0) },
  ];

  // ------------------------------------------------------------------ controls

  const browser = document.getElementById("browser");
  const PAGE_SIZE = parseInt(browser.getAttribute("data-page-size"), 10) || 50;
  const form = document.getElementById("filters");
  const table = document.getElementById("item-table");
  const summary = document.getElementById("list-summary");
  const pager = document.getElementById("pager");
  const detail = document.getElementById("item-detail");

  function countBy(fn) {
    const counts = new Map();
    for (const r of RECORDS) counts.set(fn(r), (counts.get(fn(r)) || 0) + 1);
    return counts;
  }

  function fillSelect(name, entries) {
    const select = form.elements[name];
    clear(select);
    select.appendChild(el("option", { value: "", text: "all" }));
    for (const [value, label] of entries) select.appendChild(el("option", { value: value, text: label }));
  }

  function buildControls() {
    const t = countBy(get.target);
    fillSelect("target", TARGETS.filter((x) => t.has(x.key)).map((x) => [x.key, x.key + " (" + t.get(x.key) + ")"]));
    const c = countBy((r) => r.c);
    fillSelect("category", [...c.keys()].map((id) => [id, categoryAbbr(id) + " " + categoryName(id) + " (" + c.get(id) + ")"]));
    const s = countBy((r) => r.s);
    fillSelect("scenario", [...s.keys()].map((id) => [id, scenarioName(id) + " (" + s.get(id) + ")"]));
    const v = countBy(get.verdict);
    fillSelect("verdict", ["unsafe", "safe", "none"].filter((k) => v.has(k)).map((k) => [k, (k === "none" ? "no verdict" : k) + " (" + v.get(k) + ")"]));
    const st = countBy(get.status);
    fillSelect("status", STATUSES.map((k) => [k, k + " (" + (st.get(k) || 0) + ")"]));
    const sp = countBy(get.split);
    fillSelect("split", [["split", "split / deliberated (" + (sp.get("split") || 0) + ")"], ["unanimous", "unanimous, no rebuttal (" + (sp.get("unanimous") || 0) + ")"]]);
    const n = countBy(get.rounds);
    fillSelect("rounds", [...n.keys()].sort((a, b) => a - b).map((k) => [k, k + " (" + n.get(k) + ")"]));

    const head = table.tHead.rows[0];
    clear(head);
    for (const column of COLUMNS) {
      const th = el("th", { scope: "col", className: column.value ? "sortable" : null, "data-key": column.key, text: column.label });
      if (column.value) {
        th.tabIndex = 0;
        const sortBy = () => {
          state.sort = state.sort.key === column.key ? { key: column.key, dir: -state.sort.dir } : { key: column.key, dir: 1 };
          state.page = 0;
          update();
        };
        th.addEventListener("click", sortBy);
        th.addEventListener("keydown", (e) => e.key === "Enter" && sortBy());
      }
      head.appendChild(th);
    }

    form.addEventListener("change", readControls);
    form.addEventListener("input", (e) => e.target.name === "q" && readControls());
    form.addEventListener("submit", (e) => e.preventDefault());
    document.getElementById("filters-reset").addEventListener("click", () => {
      FILTERS.forEach((k) => (state.f[k] = ""));
      state.q = "";
      state.sort = Object.assign({}, DEFAULT_SORT);
      state.page = 0;
      update();
    });
  }

  function readControls() {
    FILTERS.forEach((k) => (state.f[k] = form.elements[k].value));
    state.q = form.elements.q.value;
    state.page = 0;
    update();
  }

  function syncControls() {
    for (const k of FILTERS) {
      const select = form.elements[k];
      // A value from the URL that no record has still filters (to nothing), and is shown as such.
      if (state.f[k] !== "" && ![...select.options].some((o) => o.value === state.f[k])) {
        select.appendChild(el("option", { value: state.f[k], text: state.f[k] + " (0)" }));
      }
      select.value = state.f[k];
    }
    if (form.elements.q.value !== state.q) form.elements.q.value = state.q;
    for (const th of table.tHead.rows[0].cells) {
      const key = th.getAttribute("data-key");
      if (key === state.sort.key && key !== "order") th.setAttribute("aria-sort", state.sort.dir < 0 ? "descending" : "ascending");
      else th.removeAttribute("aria-sort");
    }
  }

  // ------------------------------------------------------------------ the list

  function renderList() {
    const rows = matching();
    const pages = Math.max(1, Math.ceil(rows.length / PAGE_SIZE));
    state.page = Math.min(state.page, pages - 1);
    const start = state.page * PAGE_SIZE;
    const shown = rows.slice(start, start + PAGE_SIZE);
    const body = table.tBodies[0];
    clear(body);
    for (const i of shown) {
      const r = RECORDS[i];
      const tr = el("tr", { "data-index": i, "data-status": get.status(r), tabindex: 0, className: state.item === i ? "current" : null }, [
        el("td", { className: "num", text: i + 1 }),
        el("td", { text: get.target(r) }),
        el("td", {}, [el("a", { href: permalink(r), text: r.id })]),
        el("td", { title: categoryName(r.c), text: categoryAbbr(r.c) }),
        el("td", { text: scenarioName(r.s) }),
        el("td", { className: "query", title: r.q, text: r.q }),
        el("td", {}, [verdictBadge(r), r.tr ? el("span", { className: "badge", title: "cut at the token limit", text: "truncated" }) : null]),
        el("td", { className: "num", text: fmt(r.ra, 1) }),
        el("td", { className: "num" }, [String(r.n || 0), r.sp ? el("span", { className: "badge split", title: "jury split or deliberated", text: "split" }) : null]),
        el("td", { className: "num", text: r.ca || 0 }),
        el("td", { className: "num", text: ((r.tp || 0) + (r.tc || 0)).toLocaleString("en") }),
      ]);
      const open = () => {
        location.hash = permalink(r);
      };
      tr.addEventListener("click", (e) => e.target.tagName !== "A" && open());
      tr.addEventListener("keydown", (e) => e.key === "Enter" && open());
      body.appendChild(tr);
    }
    summary.setAttribute("data-matching", rows.length);
    summary.setAttribute("data-total", RECORDS.length);
    summary.setAttribute("data-shown", shown.length);
    summary.textContent = rows.length
      ? "Records " + (start + 1) + "–" + (start + shown.length) + " of " + rows.length + " matching (" + RECORDS.length + " in all)"
      : "No record matches (" + RECORDS.length + " in all)";
    renderPager(pager, state.page, pages, (page) => {
      state.page = page;
      update();
    });
  }

  function renderPager(nav, page, pages, go) {
    clear(nav);
    const button = (label, target, disabled) => {
      const b = el("button", { type: "button", text: label, disabled: disabled ? "disabled" : null });
      b.addEventListener("click", () => go(target));
      return b;
    };
    nav.appendChild(button("« First", 0, page === 0));
    nav.appendChild(button("‹ Previous", page - 1, page === 0));
    nav.appendChild(el("span", { className: "page-of", "data-page": page + 1, "data-pages": pages, text: "Page " + (page + 1) + " of " + pages }));
    nav.appendChild(button("Next ›", page + 1, page >= pages - 1));
    nav.appendChild(button("Last »", pages - 1, page >= pages - 1));
  }

  function update() {
    syncControls();
    renderList();
    SB.renderDetail(detail, state.item);
    writeHash();
  }

  function onHash(initial) {
    const params = parseHash();
    const listToo = initial || ["filter", "q", "sort", "page"].some((k) => k in params);
    if (!initial && !Object.keys(params).length) return; // a section anchor: leave the view alone
    applyParams(params, listToo);
    update();
    // After layout: scrolling while the page is still being laid out can leave the view blank.
    if (state.item !== null) setTimeout(() => detail.scrollIntoView({ block: "start" }), 0);
  }

  // Shared with item.js (the one-item view) and compare.js.
  const SB = (window.SafebenchReport = {
    DATA: DATA,
    el: el,
    clear: clear,
    fmt: fmt,
    get: get,
    seat: seat,
    permalink: permalink,
    verdictBadge: verdictBadge,
    safeMedia: safeMedia,
    renderPager: renderPager,
    parseHash: parseHash,
    decode: decode,
    writeHash: writeHash,
    addHashPart: (fn) => hashParts.push(fn),
    categoryName: categoryName,
    scenarioName: scenarioName,
    closeItem: () => {
      state.item = null;
      update();
    },
    start: () => {
      buildControls();
      onHash(true);
      window.addEventListener("hashchange", () => onHash(false));
    },
  });

  // Printing shows every <details> open: a folded scenario table would otherwise be lost on paper.
  window.addEventListener("beforeprint", () => {
    for (const d of document.querySelectorAll("details")) d.open = true;
  });
})();
