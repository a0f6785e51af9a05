/* safebench report: two targets (of one run or two) on the same items, where their verdicts differ,
 * side by side. DOM built with textContent only (see report.js). Then starts the page. */
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
    let page = 0;
    for (const name of ["a", "b"]) {
      const select = form.elements[name];
      DATA.targets.forEach((t, i) => select.appendChild(el("option", { value: i, text: t.key })));
    }
    form.elements.a.value = "0";
    form.elements.b.value = DATA.targets.length > 1 ? "1" : "0";

    function render() {
      const a = parseInt(form.elements.a.value, 10);
      const b = parseInt(form.elements.b.value, 10);
      const left = byItem(a);
      const right = byItem(b);
      const both = [...left.keys()].filter((id) => right.has(id));
      const differ = both.filter((id) => outcome(DATA.records[left.get(id)]) !== outcome(DATA.records[right.get(id)]));
      const onlyA = differ.filter((id) => outcome(DATA.records[left.get(id)]) === "unsafe" && outcome(DATA.records[right.get(id)]) === "safe").length;
      const onlyB = differ.filter((id) => outcome(DATA.records[right.get(id)]) === "unsafe" && outcome(DATA.records[left.get(id)]) === "safe").length;
      const pages = Math.max(1, Math.ceil(differ.length / PAGE));
      page = Math.min(page, pages - 1);
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
        page = p;
        render();
      });
    }

    form.addEventListener("change", () => {
      page = 0;
      render();
    });
    render();
  }

  start();
  SB.start();
})();
