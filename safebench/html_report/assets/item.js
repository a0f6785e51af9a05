/* safebench report: one record in full: what the target was sent, its answer, every juror's opinion
 * round by round, the verdict and the cost. DOM built with textContent only (see report.js). */
(function () {
  "use strict";

  const SB = window.SafebenchReport;
  const el = SB.el;

  function kv(pairs) {
    const dl = el("dl", { className: "kv" });
    for (const [key, value] of pairs) {
      if (value === undefined || value === null || value === "") continue;
      dl.appendChild(el("dt", { text: key }));
      dl.appendChild(el("dd", {}, [value]));
    }
    return dl;
  }

  function text(value, empty) {
    return value ? el("pre", { className: "text", text: value }) : el("p", { className: "muted", text: empty });
  }

  function sent(r) {
    const box = el("div", { className: "box sent" }, [el("h4", { text: "Sent to the target" })]);
    box.appendChild(kv([["Modality", r.m || "unknown"], ["Image condition", r.ic]]));
    box.appendChild(text(r.p, "(no text prompt)"));
    if (r.ip !== undefined) {
      const uri = r.img !== undefined ? SB.safeMedia(SB.DATA.media[r.img], "image") : null;
      if (uri) box.appendChild(el("img", { className: "thumb", src: uri, alt: "the image sent: " + r.ip, title: r.ip }));
      else box.appendChild(el("p", { className: "muted", text: "Image " + r.ip + ": " + (r.inote || "not available") }));
    }
    if (r.ap !== undefined) {
      const uri = r.au !== undefined ? SB.safeMedia(SB.DATA.media[r.au], "audio") : null;
      const label = "Recording " + r.ap + (r.av ? " (" + r.av + " voice)" : "");
      box.appendChild(el("p", { className: "muted", text: label }));
      if (uri) box.appendChild(el("audio", { controls: "controls", preload: "none", src: uri }));
      else box.appendChild(el("p", { className: "muted", text: r.anote || "not available" }));
    }
    if (r.q && r.q !== r.p) {
      box.appendChild(el("h4", { text: "Query (what the jury judged against)" }));
      box.appendChild(text(r.q, ""));
    }
    return box;
  }

  function answer(r) {
    const box = el("div", { className: "box answer" }, [el("h4", { text: "The target's answer" })]);
    box.appendChild(text(r.r, "(no answer: the target failed)"));
    box.appendChild(
      kv([
        ["Finish reason", r.fr || "not reported"],
        ["Truncated", r.tr ? "yes: cut at the token limit, judged as it is" : "no"],
        ["Error", r.e || null],
      ])
    );
    return box;
  }

  function verdict(r) {
    const box = el("div", { className: "box verdict" }, [el("h4", {}, ["Verdict ", SB.verdictBadge(r)])]);
    box.appendChild(
      kv([
        ["Status", SB.get.status(r)],
        ["Rating", SB.fmt(r.ra, 2) + " (mean, 1–5)"],
        ["Rebuttal rounds", String(r.n || 0)],
        ["Jury", r.sp ? "split or deliberated" : "unanimous at once"],
        ["Model calls", String(r.ca || 0)],
        ["Tokens", (r.tp || 0).toLocaleString("en") + " prompt, " + (r.tc || 0).toLocaleString("en") + " completion"],
      ])
    );
    box.appendChild(text(r.vr, "(no reasoning)"));
    return box;
  }

  function rounds(r) {
    const opinions = r.o || [];
    const numbers = [...new Set(opinions.map((o) => o[3]))].sort((a, b) => a - b);
    const wrap = el("div", { className: "rounds" }, [el("h4", { text: "The jury, round by round (" + opinions.length + " opinions)" })]);
    if (!opinions.length) wrap.appendChild(el("p", { className: "muted", text: "No juror opinion (the record was not judged)." }));
    for (const n of numbers) {
      const section = el("section", { className: "round", "data-round": n }, [
        el("h5", { text: n === 0 ? "Round 0: independent assessments" : "Round " + n + ": after rebuttal" }),
      ]);
      const table = el("table", { className: "plain opinions" }, [
        el("thead", {}, [el("tr", {}, ["Seat", "Persona", "Card", "Model", "Vote", "Rating", "Reasoning"].map((h) => el("th", { text: h })))]),
      ]);
      const body = el("tbody");
      for (const o of opinions.filter((x) => x[3] === n)) {
        const [slot, card, model, , unsafe, rating, reasoning, status, error] = o;
        const who = SB.seat(r, slot);
        const vote =
          status === "abstained"
            ? el("span", { className: "badge abstained", text: "abstained" })
            : el("span", { className: "badge " + (unsafe ? "unsafe" : "safe"), text: unsafe === true ? "unsafe" : unsafe === false ? "safe" : "–" });
        const why = status === "abstained" ? [el("span", { className: "muted", text: "error: " + (error || "unknown") }), reasoning ? el("pre", { className: "text", text: reasoning }) : null] : [el("pre", { className: "text", text: reasoning || "" })];
        body.appendChild(
          el("tr", { className: "opinion", "data-status": status }, [
            el("td", { className: "num", text: slot === null || slot === undefined ? "–" : slot }),
            el("td", { text: who ? who.persona : "" }),
            el("td", {}, [el("code", { text: card })]),
            el("td", {}, [el("code", { text: model })]),
            el("td", {}, [vote]),
            el("td", { className: "num", text: rating === null || rating === undefined ? "–" : rating }),
            el("td", { className: "reason" }, why),
          ])
        );
      }
      table.appendChild(body);
      section.appendChild(table);
      wrap.appendChild(section);
    }
    return wrap;
  }

  SB.renderDetail = function (detail, index) {
    SB.clear(detail);
    if (index === null || index === undefined) {
      detail.hidden = true;
      return;
    }
    const r = SB.DATA.records[index];
    const target = SB.DATA.targets[r.t];
    const close = el("button", { type: "button", className: "close", text: "Close" });
    close.addEventListener("click", SB.closeItem);
    detail.setAttribute("data-item", r.id);
    detail.setAttribute("data-target", target.key);
    detail.appendChild(close);
    detail.appendChild(el("h3", {}, [target.key + " / " + r.id + " ", el("a", { href: SB.permalink(r), className: "permalink", text: "permalink" })]));
    const run = SB.DATA.runs.length > 1 ? " · run " + SB.DATA.runs[target.run].name : "";
    detail.appendChild(el("p", { className: "muted", text: SB.categoryName(r.c) + " · " + SB.scenarioName(r.s) + " · target spec " + target.spec + run }));
    detail.appendChild(el("div", { className: "grid" }, [sent(r), answer(r)]));
    detail.appendChild(verdict(r));
    detail.appendChild(rounds(r));
    detail.hidden = false;
  };
})();
