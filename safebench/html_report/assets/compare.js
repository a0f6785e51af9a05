/* safebench report: two targets (of one run or two) on the same items, where their verdicts differ,
 * side by side. DOM built with textContent only (see report.js). Then starts the page.
 *
 * The comparison is in the URL fragment, next to the item browser's keys, so that a link opens it:
 * #compare=<target A>,<target B>&compare-page=<n> (targets by their key, URI-encoded; pages from 1),
 * written only when the view is not the default one (the first two targets, page 1). A fragment
 * naming a target the page does not have, or malformed, gives the default view; a page out of range
 * gives page 1. Values from the URL only ever select among the page's own targets: none is shown. */
(function () {
  "use strict";

  const SB = window.SafebenchReport;
  const el = SB.el;
  const DATA = SB.DATA;
  const PAGE = 20;
  const root = document.getElementById("comparer");

  function byItem(target) {
    const map = new Map();
    DATA.records.forEach((r, i) => r.t === target && map.set(r.id, i));
    return map;
  }

  function outcome(r) {
    const status = SB.get.status(r);
    return status === "decided" ? SB.get.verdict(r) : status;
  }

  function side(r, target) {
    return el("div", { className: "side" }, [
      el("p", {}, [el("strong", { text: target.key }), " ", SB.verdictBadge(r), " rating " + SB.fmt(r.ra, 1) + " · rounds " + (r.n || 0) + " ", el("a", { href: SB.permalink(r), text: "open" })]),
      el("pre", { className: "text answer", text: r.r || "(no answer)" }),
      r.vr ? el("p", { className: "muted", text: r.vr }) : null,
    ]);
  }

  function start() {
    if (!root) return;
    const form = document.getElementById("compare-form");
    const summary = document.getElementById("compare-summary");
    const list = document.getElementById("compare-list");
    const pager = document.getElementById("compare-pager");
    const section = root.closest("section") || root;
    const DEFAULT = { a: 0, b: DATA.targets.length > 1 ? 1 : 0 };
    const state = { a: DEFAULT.a, b: DEFAULT.b, page: 0 };
    for (const name of ["a", "b"]) {
      const select = form.elements[name];
      DATA.targets.forEach((t, i) => select.appendChild(el("option", { value: i, text: t.key })));
    }

    function targetIndex(text) {
      const key = SB.decode(text);
      return DATA.targets.findIndex((t) => t.key === key); // -1: not one of this page's targets
    }

    // The state a fragment asks for (true), or the default view (false: none asked, or not valid).
    function applyParams(params) {
      state.a = DEFAULT.a;
      state.b = DEFAULT.b;
      state.page = 0;
      const pair = typeof params.compare === "string" ? params.compare.split(",") : [];
      if (pair.length !== 2) return false;
      const a = targetIndex(pair[0]);
      const b = targetIndex(pair[1]);
      if (a < 0 || b < 0) return false;
      state.a = a;
      state.b = b;
      const page = params["compare-page"];
      if (typeof page === "string" && /^[1-9][0-9]{0,5}$/.test(page)) state.page = parseInt(page, 10) - 1;
      return true;
    }

    SB.addHashPart(() => {
      if (state.a === DEFAULT.a && state.b === DEFAULT.b && state.page === 0) return "";
      const pair = encodeURIComponent(DATA.targets[state.a].key) + "," + encodeURIComponent(DATA.targets[state.b].key);
      return "compare=" + pair + (state.page > 0 ? "&compare-page=" + (state.page + 1) : "");
    });

    function show(params) {
      // After layout, as report.js does for an item; an item in the same fragment wins the scroll.
      if (applyParams(params) && !params.item) setTimeout(() => section.scrollIntoView({ block: "start" }), 0);
    }

    function render() {
      form.elements.a.value = String(state.a);
      form.elements.b.value = String(state.b);
      const a = state.a;
      const b = state.b;
      const left = byItem(a);
      const right = byItem(b);
      const both = [...left.keys()].filter((id) => right.has(id));
      const differ = both.filter((id) => outcome(DATA.records[left.get(id)]) !== outcome(DATA.records[right.get(id)]));
      const onlyA = differ.filter((id) => outcome(DATA.records[left.get(id)]) === "unsafe" && outcome(DATA.records[right.get(id)]) === "safe").length;
      const onlyB = differ.filter((id) => outcome(DATA.records[right.get(id)]) === "unsafe" && outcome(DATA.records[left.get(id)]) === "safe").length;
      const pages = Math.max(1, Math.ceil(differ.length / PAGE));
      if (state.page >= pages) state.page = 0; // only a stale link asks for a page past the end
      const page = state.page;
      summary.setAttribute("data-a", DATA.targets[a].key);
      summary.setAttribute("data-b", DATA.targets[b].key);
      summary.setAttribute("data-both", both.length);
      summary.setAttribute("data-differ", differ.length);
      summary.textContent =
        a === b
          ? "Choose two different targets."
          : both.length + " items answered by both; verdicts differ on " + differ.length + " (unsafe for A only: " + onlyA + ", for B only: " + onlyB + ", the rest differ in status).";
      SB.clear(list);
      if (a !== b) {
        for (const id of differ.slice(page * PAGE, page * PAGE + PAGE)) {
          const ra = DATA.records[left.get(id)];
          const rb = DATA.records[right.get(id)];
          list.appendChild(
            el("article", { className: "pair", "data-item": id }, [
              el("h4", { text: id + " · " + SB.categoryName(ra.c) + " · " + SB.scenarioName(ra.s) }),
              el("pre", { className: "text", text: ra.q || "" }),
              el("div", { className: "grid" }, [side(ra, DATA.targets[a]), side(rb, DATA.targets[b])]),
            ])
          );
        }
      }
      SB.renderPager(pager, page, pages, (p) => {
        state.page = p;
        render();
        SB.writeHash();
      });
    }

    form.addEventListener("change", () => {
      state.a = parseInt(form.elements.a.value, 10);
      state.b = parseInt(form.elements.b.value, 10);
      state.page = 0;
      render();
      SB.writeHash();
    });
    // Registered before report.js's own listener (SB.start, below), which then writes the whole
    // fragment back. A fragment without a comparison (an item's permalink) leaves the view as it is.
    window.addEventListener("hashchange", () => {
      const params = SB.parseHash();
      if (!("compare" in params) && !("compare-page" in params)) return;
      show(params);
      render();
    });
    // Not written back here: report.js reads the rest of the fragment first, then writes it all.
    show(SB.parseHash());
    render();
  }

  start();
  SB.start();
})();
