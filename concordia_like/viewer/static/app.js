// The viewer's page: a map with a step slider, the timeline, conversations, residents,
// usage, the town feed and experiments. Every piece of data is put in the page as text
// (textContent, createTextNode, setAttribute), never parsed as HTML: residents' words
// are model output.
// Served, it asks the JSON API; exported, it answers the same questions from the data
// files written beside it (window.VIEW_DATA).
"use strict";
(function () {
  const STATIC = window.VIEW_DATA !== undefined;
  const SVGNS = "http://www.w3.org/2000/svg";
  const COLORS = ["#0969da", "#cf222e", "#1a7f37", "#9a6700", "#8250df", "#bf3989",
    "#0a7f8f", "#6e7781", "#d1242f", "#116329", "#953800", "#5a32a3"];
  const PAGE = 100;
  const S = { index: null, rid: null, head: null, positions: null, step: 0, timer: null,
    follow: true, route: [], refresh: null };

  // -- building the page ----------------------------------------------------------------
  // kids: nodes, text, nulls (left out) and arrays of those, to any depth
  function fill(e, ...kids) {
    e.replaceChildren(...kids.flat(Infinity).filter((k) => k !== null && k !== undefined)
      .map((k) => (k instanceof Node ? k : document.createTextNode(String(k)))));
    return e;
  }
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    setAttrs(e, attrs);
    return fill(e, ...kids);
  }
  function svg(tag, attrs, ...kids) {
    const e = document.createElementNS(SVGNS, tag);
    setAttrs(e, attrs);
    return fill(e, ...kids);
  }
  function setAttrs(e, attrs) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") e.setAttribute("class", v);
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, String(v));
    }
  }
  function fmt(x, digits) {
    if (x === null || x === undefined || x === "") return "–";
    if (typeof x !== "number") return String(x);
    if (!isFinite(x)) return "–";
    const d = digits === undefined ? (Math.abs(x) >= 100 ? 0 : Math.abs(x) >= 1 ? 2 : 3) : digits;
    return x.toLocaleString("en", { maximumFractionDigits: d });
  }
  function link(route, text) { return el("a", { href: "#/" + route.map(encodeURIComponent).join("/") }, text); }
  function main(...kids) { return fill(document.getElementById("main"), ...kids); }
  function placeName(pid) { const p = S.head && S.head.places.find((x) => x.id === pid); return p ? p.name : (pid || ""); }
  function color(i) { return COLORS[i % COLORS.length]; }

  // -- the data: the API, or the exported files -----------------------------------------
  async function api(path, params) {
    if (STATIC) return staticApi(path, params || {});
    const url = new URL("api/" + path, window.location.href);
    for (const [k, v] of Object.entries(params || {})) {
      for (const one of Array.isArray(v) ? v : [v]) if (one !== "" && one !== null && one !== undefined) url.searchParams.append(k, one);
    }
    const r = await fetch(url);
    const data = await r.json();
    if (!r.ok) throw new Error(data.error || r.statusText);
    return data;
  }
  function staticApi(path, p) {
    const D = window.VIEW_DATA;
    const parts = path.split("/").map(decodeURIComponent);
    if (parts[0] === "index") return D.index;
    if (parts[0] === "experiment") return D.experiment;
    const run = D.runs[parts[1]];
    if (!run) throw new Error("no run " + parts[1] + " in this export");
    const what = parts[2];
    if (what === "head" || what === "positions" || what === "usage" || what === "feed") return run[what];
    const offset = Number(p.offset || 0), limit = Number(p.limit || PAGE);
    if (what === "events") {
      const q = (p.q || "").toLowerCase(), kinds = [].concat(p.kind || []).filter(Boolean);
      const rows = run.events.filter((e) => (!p.actor || e.actor === p.actor) && (!p.place || e.place === p.place)
        && (!kinds.length || kinds.includes(e.kind)) && (!q || e.text.toLowerCase().includes(q)));
      return { total: rows.length, offset, rows: rows.slice(offset, offset + limit) };
    }
    if (what === "conversations") {
      const threads = run.threads.filter((t) => !p.resident || t.people.includes(p.resident));
      return { total: threads.length, offset, threads: threads.slice(offset, offset + limit) };
    }
    if (what === "resident") return run.residents[parts[3]];
    if (what === "memories") return { ...run.memories[parts[3]], query: "", static: true };
    throw new Error("unknown path " + path);
  }

  // -- routing --------------------------------------------------------------------------
  const PAGES = { map: pageMap, timeline: pageTimeline, conversations: pageConversations,
    usage: pageUsage, resident: pageResident, feed: pageFeed };

  async function route() {
    stopPlay();
    S.refresh = null;
    const parts = window.location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
    if (!parts.length) {
      const dflt = S.index.kind === "experiment" ? ["experiment"] : [S.index.current || S.index.runs[0].id, "map"];
      window.location.replace("#/" + dflt.map(encodeURIComponent).join("/"));
      return;
    }
    S.route = parts;
    try {
      if (parts[0] === "experiment") { S.rid = null; nav(); await pageExperiment(); return; }
      if (S.rid !== parts[0] || !S.head) { S.rid = parts[0]; S.head = null; S.positions = null; await loadHead(); }
      nav();
      await (PAGES[parts[1]] || pageMap)(parts.slice(2));
    } catch (err) {
      main(el("p", { class: "error" }, "Could not show this page: " + err.message));
    }
  }
  async function loadHead() {
    S.head = await api("run/" + encodeURIComponent(S.rid) + "/head");
    document.getElementById("title").textContent = S.head.world + " · run " + S.head.id;
  }
  function nav() {
    const n = document.getElementById("nav");
    const here = S.route[1] || S.route[0];
    const items = [];
    if (S.index.kind === "experiment") items.push(el("a", { href: "#/experiment", class: here === "experiment" ? "on" : null }, "Experiment"));
    if (S.rid) {
      const pages = [["map", "Map"], ["timeline", "Timeline"], ["conversations", "Conversations"], ["usage", "Usage"]];
      if (S.head && S.head.feed) pages.push(["feed", "Feed"]);
      for (const [k, label] of pages) {
        const a = link([S.rid, k], label);
        if (here === k) a.className = "on";
        items.push(a);
      }
    }
    if (S.index.runs.length > 1) {
      const sel = el("select", { id: "run", onchange: (e) => { window.location.hash = "#/" + encodeURIComponent(e.target.value) + "/map"; } },
        el("option", { value: "" }, "open a run…"),
        S.index.runs.map((r) => el("option", { value: r.id, selected: r.id === S.rid ? "selected" : null }, r.label)));
      items.push(sel);
    }
    fill(n, items);
  }

  // -- map ------------------------------------------------------------------------------
  async function pageMap() {
    const h = S.head;
    const slider = el("input", { id: "step", type: "range", min: 0, max: h.steps_done, value: h.steps_done, step: 1 });
    const label = el("span", { id: "step-label" });
    const play = el("button", { id: "play", type: "button" }, "▶ play");
    const box = svg("svg", { class: "map", id: "map", viewBox: "0 0 1000 700", role: "img" });
    const where = el("table", { id: "where" });
    for (const [a, b] of h.edges) {
      const p = h.places.find((x) => x.id === a), q = h.places.find((x) => x.id === b);
      if (p && q) box.append(svg("line", { class: "edge", x1: p.x, y1: p.y, x2: q.x, y2: q.y }));
    }
    for (const p of h.places) {
      box.append(svg("g", { class: "place", "data-place": p.id },
        svg("circle", { cx: p.x, cy: p.y, r: 22 }, svg("title", {}, p.name + (p.description ? " — " + p.description : "")))));
    }
    for (const p of h.places) box.append(svg("text", { class: "place-name", x: p.x, y: p.y + 36 }, p.name));  // above every circle
    h.residents.forEach((name, i) => {
      const g = svg("g", { class: "resident", "data-resident": name, onclick: () => { window.location.hash = "#/" + encodeURIComponent(S.rid) + "/resident/" + encodeURIComponent(name); } },
        svg("circle", { r: 8, fill: color(i) }, svg("title", {}, name)),
        svg("text", { x: 10, y: 4 }, name.split(" ")[0]));
      box.append(g);
    });
    main(el("div", { class: "toolbar" }, play, slider, label),
      box, el("h3", {}, "Who is where"), where);
    slider.addEventListener("input", () => { S.follow = Number(slider.value) === S.head.steps_done; showStep(Number(slider.value)); });
    play.addEventListener("click", togglePlay);
    S.refresh = refreshMap;
    if (!S.positions) S.positions = await api("run/" + encodeURIComponent(S.rid) + "/positions");
    showStep(S.follow ? h.steps_done : Math.min(S.step, h.steps_done));
  }
  function showStep(step) {
    S.step = step;
    const slider = document.getElementById("step");
    if (!slider) return;
    slider.value = step;
    const h = S.head, pos = S.positions;
    document.getElementById("step-label").textContent = "step " + step + " of " + h.steps_done
      + (step === h.steps_done && h.sim_time ? " · " + h.sim_time.replace("T", " ") : "");
    if (!pos) return;
    const row = pos.where[Math.min(step, pos.where.length - 1)] || [];
    const at = {};
    pos.residents.forEach((name, i) => { const pid = row[i]; if (pid) (at[pid] = at[pid] || []).push(name); });
    const byName = {};
    for (const [pid, names] of Object.entries(at)) {
      const p = h.places.find((x) => x.id === pid);
      if (!p) continue;
      names.forEach((name, k) => {  // one above the place, several stacked beside it
        byName[name] = names.length === 1 ? [pid, p.x, p.y - 30] : [pid, p.x + 30, p.y - 18 + 14 * k];
      });
    }
    for (const g of document.querySelectorAll("#map .resident")) {
      const spot = byName[g.getAttribute("data-resident")];
      if (!spot) { g.setAttribute("visibility", "hidden"); continue; }
      g.removeAttribute("visibility");
      g.setAttribute("data-place", spot[0]);
      g.setAttribute("transform", "translate(" + spot[1].toFixed(1) + "," + spot[2].toFixed(1) + ")");
    }
    const table = document.getElementById("where");
    fill(table, el("tr", {}, el("th", {}, "resident"), el("th", {}, "place")),
      pos.residents.map((name, i) => el("tr", { "data-resident": name },
        el("td", {}, link([S.rid, "resident", name], name)),
        el("td", { "data-place": row[i] || "" }, placeName(row[i])))));
  }
  function togglePlay() {
    if (S.timer) { stopPlay(); return; }
    const slider = document.getElementById("step");
    if (Number(slider.value) >= S.head.steps_done) showStep(0);
    document.getElementById("play").textContent = "❚❚ pause";
    S.timer = window.setInterval(() => {
      const next = S.step + 1;
      if (next > S.head.steps_done) { stopPlay(); return; }
      S.follow = next === S.head.steps_done;
      showStep(next);
    }, 600);
  }
  function stopPlay() {
    if (S.timer) window.clearInterval(S.timer);
    S.timer = null;
    const b = document.getElementById("play");
    if (b) b.textContent = "▶ play";
  }
  async function refreshMap() {
    S.positions = await api("run/" + encodeURIComponent(S.rid) + "/positions");
    const slider = document.getElementById("step");
    slider.max = S.head.steps_done;
    showStep(S.follow && !S.timer ? S.head.steps_done : S.step);
  }

  // -- timeline -------------------------------------------------------------------------
  async function pageTimeline() {
    const h = S.head;
    const f = { actor: el("select", { id: "f-actor" }, el("option", { value: "" }, "anyone"), h.residents.map((r) => el("option", { value: r }, r))),
      place: el("select", { id: "f-place" }, el("option", { value: "" }, "anywhere"), h.places.map((p) => el("option", { value: p.id }, p.name))),
      kind: el("select", { id: "f-kind" }, el("option", { value: "" }, "any kind"), h.kinds.map((k) => el("option", { value: k }, k))),
      q: el("input", { id: "f-text", type: "search", placeholder: "text contains…" }) };
    const info = el("span", { id: "t-info", class: "muted" });
    const prev = el("button", { type: "button", id: "t-prev" }, "◀ newer");
    const next = el("button", { type: "button", id: "t-next" }, "older ▶");
    const body = el("tbody", { id: "events" });
    let offset = -1, total = 0, timer = null;
    async function load(at) {
      const params = { actor: f.actor.value, place: f.place.value, kind: f.kind.value, q: f.q.value, limit: PAGE };
      if (at < 0) {  // newest page first
        const head = await api("run/" + encodeURIComponent(S.rid) + "/events", { ...params, limit: 1 });
        at = Math.max(0, Math.floor((head.total - 1) / PAGE) * PAGE);
      }
      const page = await api("run/" + encodeURIComponent(S.rid) + "/events", { ...params, offset: at });
      offset = at; total = page.total;
      body.replaceChildren(...page.rows.map((e) => el("tr", { class: "event" },
        el("td", { class: "num" }, e.step), el("td", {}, (e.time || "").slice(11)), el("td", {}, e.kind),
        el("td", {}, e.actor ? link([S.rid, "resident", e.actor], e.actor) : ""), el("td", {}, placeName(e.place)),
        el("td", { class: "text" }, e.text))));
      info.textContent = total ? "events " + (offset + 1) + "–" + (offset + page.rows.length) + " of " + total : "no events match";
      prev.disabled = offset + PAGE >= total; next.disabled = offset === 0;
    }
    const reload = () => { load(-1).catch(showError); };
    for (const k of ["actor", "place", "kind"]) f[k].addEventListener("change", reload);
    f.q.addEventListener("input", () => { window.clearTimeout(timer); timer = window.setTimeout(reload, 250); });
    prev.addEventListener("click", () => load(offset + PAGE).catch(showError));
    next.addEventListener("click", () => load(Math.max(0, offset - PAGE)).catch(showError));
    main(el("div", { class: "toolbar" }, f.actor, f.place, f.kind, f.q, prev, next, info),
      el("table", {}, el("thead", {}, el("tr", {}, ["step", "time", "kind", "who", "where", "what"].map((c) => el("th", {}, c)))), body));
    S.refresh = () => (offset + PAGE >= total ? load(-1) : Promise.resolve());
    await load(-1);
  }
  function showError(err) { main(el("p", { class: "error" }, String(err.message || err))); }

  // -- conversations --------------------------------------------------------------------
  async function pageConversations() {
    const who = el("select", { id: "c-resident" }, el("option", { value: "" }, "everyone"), S.head.residents.map((r) => el("option", { value: r }, r)));
    const list = el("div", { id: "threads" });
    const info = el("span", { class: "muted" });
    const more = el("button", { type: "button" }, "more");
    let offset = 0;
    async function load(reset) {
      if (reset) { offset = 0; list.replaceChildren(); }
      const page = await api("run/" + encodeURIComponent(S.rid) + "/conversations", { resident: who.value, offset, limit: 30 });
      for (const t of page.threads) {
        list.append(el("div", { class: "thread" },
          el("div", { class: "muted" }, (t.time || "").replace("T", " ") + " · " + placeName(t.place) + " · " + t.people.join(", ")),
          t.lines.map((l) => el("div", { class: "line" }, el("span", { class: "speaker" }, l.speaker),
            l.to.length ? " → " + l.to.join(", ") : "", ": ", l.text))));
      }
      offset += page.threads.length;
      info.textContent = page.total ? offset + " of " + page.total + " conversations" : "no conversations";
      more.disabled = offset >= page.total;
    }
    who.addEventListener("change", () => load(true).catch(showError));
    more.addEventListener("click", () => load(false).catch(showError));
    main(el("div", { class: "toolbar" }, who, info), list, more);
    await load(true);
  }

  // -- the town feed --------------------------------------------------------------------
  async function pageFeed() {
    const f = await api("run/" + encodeURIComponent(S.rid) + "/feed");
    if (!f.has_feed) { main(el("p", { class: "muted" }, "This run's world has no town feed.")); return; }
    const who = (name) => (S.head.residents.includes(name) ? link([S.rid, "resident", name], name) : name);
    const byStep = {};
    for (const p of f.posts) (byStep[p.step] = byStep[p.step] || []).push(p);
    const steps = Object.keys(byStep).map(Number).sort((a, b) => b - a);  // newest first
    const post = (p) => el("div", { class: "post", id: "post-" + p.id, "data-post": p.id },
      el("div", { class: "muted" }, p.id + " · " + (p.time || "").replace("T", " ") + " · ", who(p.author),
        p.reply_to ? " replying to " + p.reply_to : ""),
      el("div", { class: "line" }, p.text),
      el("div", { class: "muted" },
        el("span", { class: "likes", "data-likes": p.likes }, "♥ " + p.likes + (p.liked_by.length ? " (" + p.liked_by.join(", ") + ")" : "")),
        " · shown to " + p.shown_to.length + (p.replies.length ? " · replies: " + p.replies.join(", ") : "")));
    main(el("h2", {}, "Town feed"),
      el("p", { id: "feed-info" }, f.posts.length + " posts, " + f.likes + " likes, " + f.messages + " messages; ranked " + f.ranking + " (as the newest step ranks it)"),
      f.steps.length ? lineChart([{ name: "posts", color: color(0), points: f.steps.map((s) => ({ x: s.step, y: s.posts })) },
        { name: "replies", color: color(1), points: f.steps.map((s) => ({ x: s.step, y: s.replies })) }], { width: 640, height: 180 }) : null,
      el("div", { id: "feed" }, steps.length ? steps.map((s) => el("div", { class: "feed-step", "data-step": s },
        el("h3", {}, "Step " + s), byStep[s].map(post))) : el("p", { class: "muted" }, "Nothing posted yet.")),
      el("p", { class: "muted" }, "Likes and who was shown a post are as the newest checkpoint holds them; the apps keep no time of a like."));
  }

  // -- a resident -----------------------------------------------------------------------
  async function pageResident(args) {
    const name = args[0];
    const base = "run/" + encodeURIComponent(S.rid);
    const r = await api(base + "/resident/" + encodeURIComponent(name));
    const card = r.card || {};
    const persona = el("div", { class: "card", id: "persona" },
      el("h2", {}, r.name),
      card.occupation ? el("p", {}, [card.occupation, card.age !== undefined ? card.age + " years" : null, card.pronouns].filter(Boolean).join(" · ")) : null,
      card.traits && card.traits.length ? el("p", {}, "Traits: ", card.traits.map((t) => el("span", { class: "chip" }, t))) : null,
      card.values && card.values.length ? el("p", {}, "Values: ", card.values.map((t) => el("span", { class: "chip" }, t))) : null,
      card.goals && card.goals.length ? el("div", {}, el("h3", {}, "Goals"), el("ul", {}, card.goals.map((g) => el("li", {}, g)))) : null,
      card.backstory ? el("p", {}, card.backstory) : null,
      card.speaking_style ? el("p", { class: "muted" }, "Speaks: " + card.speaking_style) : null,
      card.relationships && Object.keys(card.relationships).length
        ? el("div", {}, el("h3", {}, "Relationships"), el("table", { id: "relationships" }, Object.entries(card.relationships).map(([who, what]) =>
          el("tr", {}, el("td", {}, S.head.residents.includes(who) ? link([S.rid, "resident", who], who) : who), el("td", {}, what))))) : null);
    const now = el("div", { class: "card" },
      el("h3", {}, "Now"),
      el("p", {}, "At ", el("strong", {}, placeName(r.location)), r.activity ? " — " + r.activity : ""),
      Object.keys(r.attributes || {}).length ? el("p", {}, Object.entries(r.attributes).map(([k, v]) => el("span", { class: "chip" }, k + " " + fmt(v)))) : null,
      r.holdings.length ? el("p", {}, "Holds: ", r.holdings.map((x) => el("span", { class: "chip" }, x))) : null,
      r.plan ? el("div", {}, el("h3", {}, "Today's plan (" + (r.plan.day || "") + ")"),
        el("table", { id: "plan" }, r.plan.blocks.map((b, i) => el("tr", { class: i === r.plan.current ? "now" : null },
          el("td", {}, b.start + "–" + b.end), el("td", {}, b.text), el("td", {}, b.place && !b.text.includes(placeName(b.place)) ? placeName(b.place) : ""),
          el("td", {}, i === r.plan.current ? "◀ now" : ""))))) : el("p", { class: "muted" }, "No plan yet."));
    const q = el("input", { id: "mem-q", type: "search", placeholder: "a query, as the agent would ask its memory", size: 48 });
    const go = el("button", { id: "mem-go", type: "button" }, "score");
    const memInfo = el("p", { class: "muted", id: "mem-info" });
    const memTable = el("table", { id: "memories" });
    async function loadMemories() {
      const m = await api(base + "/memories/" + encodeURIComponent(name), { q: q.value });
      const scored = Boolean(m.query);
      memInfo.textContent = m.static ? "Newest " + m.rows.length + " of " + m.total + " memories (scoring a query needs the server: concordia-like view)."
        : scored ? "All " + m.total + " memories scored for “" + m.query + "” as the agent's retrieval scores them (each part min-max normalised); best first, " + m.rows.length + " shown."
          : "Newest " + m.rows.length + " of " + m.total + " memories; recency is the decay since last recalled.";
      const cols = scored ? ["id", "kind", "memory", "importance", "recency", "relevance", "score"] : ["id", "kind", "memory", "importance", "recency"];
      fill(memTable, el("tr", {}, cols.map((c) => el("th", {}, c))),
        m.rows.map((x) => el("tr", { class: "memory", id: "m" + x.id, "data-id": x.id },
          el("td", { class: "num" }, x.id), el("td", {}, x.kind), el("td", { class: "text" }, x.text),
          el("td", { class: "num" }, scored ? fmt(x.importance_n) + " (" + x.importance + ")" : x.importance),
          el("td", { class: "num" }, scored ? fmt(x.recency_n) : fmt(x.recency)),
          scored ? el("td", { class: "num" }, fmt(x.relevance_n) + " (" + fmt(x.relevance) + ")") : null,
          scored ? el("td", { class: "num" }, fmt(x.score)) : null)));
    }
    go.addEventListener("click", () => loadMemories().catch(showError));
    q.addEventListener("keydown", (e) => { if (e.key === "Enter") loadMemories().catch(showError); });
    const reflections = el("div", { id: "reflections" }, r.reflections.length ? r.reflections.map((x) => el("div", {},
      el("div", { class: "line" }, el("strong", {}, (x.created || "").replace("T", " ") + " "), x.text),
      x.cites.length ? el("ul", { class: "cites" }, x.cites.map((c) => el("li", {}, el("a", { href: "#", onclick: (e) => { e.preventDefault(); const row = document.getElementById("m" + c.id); if (row) row.scrollIntoView(); } }, "#" + c.id), " ", c.text))) : null))
      : el("p", { class: "muted" }, "No reflections yet."));
    const said = el("div", { id: "said" }, r.said.length ? r.said.map((u) => el("div", { class: "line" },
      el("span", { class: "muted" }, (u.time || "").replace("T", " ") + (u.to.length ? " to " + u.to.join(", ") : "") + ": "), u.text))
      : el("p", { class: "muted" }, "Has said nothing yet."));
    main(el("div", { class: "cols" }, el("div", {}, persona), el("div", {}, now)),
      el("h2", {}, "Memories (" + r.memories + ")"), el("div", { class: "toolbar" }, q, go), memInfo, memTable,
      el("h2", {}, "Reflections"), reflections,
      el("h2", {}, "What " + r.name.split(" ")[0] + " said"), said);
    await loadMemories();
  }

  // -- charts (small SVG, no library) ----------------------------------------------------
  function lineChart(series, opts) {
    const W = opts.width || 640, H = opts.height || 240, L = 52, R = 12, T = 12, B = 30;
    const pts = series.flatMap((s) => s.points);
    if (!pts.length) return el("p", { class: "muted" }, "no data");
    const xs = pts.map((p) => p.x), ys = pts.flatMap((p) => [p.y, p.lo, p.hi]).filter((v) => v !== null && v !== undefined && isFinite(v));
    let x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(0, ...ys), y1 = Math.max(...ys);
    if (x1 === x0) x1 = x0 + 1;
    if (y1 === y0) y1 = y0 + 1;
    const X = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R), Y = (y) => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
    const c = svg("svg", { class: "chart", width: W, height: H, viewBox: "0 0 " + W + " " + H });
    for (let i = 0; i <= 4; i++) {
      const y = y0 + ((y1 - y0) * i) / 4;
      c.append(svg("line", { class: "grid", x1: L, x2: W - R, y1: Y(y), y2: Y(y) }), svg("text", { x: L - 6, y: Y(y) + 4, "text-anchor": "end" }, fmt(y)));
    }
    c.append(svg("line", { class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B }),
      svg("text", { x: L, y: H - 10 }, fmt(x0, 0)), svg("text", { x: W - R, y: H - 10, "text-anchor": "end" }, fmt(x1, 0)),
      svg("text", { x: (L + W) / 2, y: H - 4, "text-anchor": "middle" }, opts.xlabel || "step"));
    series.forEach((s, i) => {
      const band = s.points.filter((p) => p.lo !== null && p.lo !== undefined && p.hi !== null && p.hi !== undefined);
      if (band.length > 1) {
        const d = band.map((p) => X(p.x) + "," + Y(p.hi)).concat(band.slice().reverse().map((p) => X(p.x) + "," + Y(p.lo)));
        c.append(svg("polygon", { points: d.join(" "), fill: s.color || color(i), "fill-opacity": 0.15, stroke: "none", class: "band" }));
      }
      c.append(svg("polyline", { points: s.points.map((p) => X(p.x) + "," + Y(p.y)).join(" "), fill: "none", stroke: s.color || color(i), "stroke-width": 2, "stroke-dasharray": i % 2 ? "7 5" : null, class: "series", "data-series": s.name }));
      if (s.points.length <= 60) {
        for (const p of s.points) c.append(svg("circle", { cx: X(p.x), cy: Y(p.y), r: 2.5, fill: s.color || color(i) },
          svg("title", {}, s.name + " · " + (opts.xlabel || "step") + " " + p.x + ": " + fmt(p.y) + (p.lo !== null && p.lo !== undefined ? " [" + fmt(p.lo) + ", " + fmt(p.hi) + "]" : ""))));
      }
    });
    return el("div", {}, c, el("div", { class: "legend" }, series.map((s, i) => { const sw = el("i"); sw.style.background = s.color || color(i); return el("span", {}, sw, s.name); })));
  }
  function barChart(items, opts) {
    const W = opts.width || 420, row = 20, L = 150, H = items.length * row + 8;
    const max = Math.max(1e-12, ...items.map((x) => x.value));
    const c = svg("svg", { class: "chart", width: W, height: H, viewBox: "0 0 " + W + " " + H });
    items.forEach((x, i) => {
      const w = ((W - L - 70) * x.value) / max;
      c.append(svg("text", { x: L - 6, y: i * row + 15, "text-anchor": "end" }, x.label),
        svg("rect", { class: "bar", "data-label": x.label, "data-value": x.value, x: L, y: i * row + 4, width: Math.max(w, 0.5), height: row - 6, fill: opts.color || COLORS[0] }, svg("title", {}, x.label + ": " + fmt(x.value))),
        svg("text", { x: L + w + 4, y: i * row + 15 }, fmt(x.value)));
    });
    return el("div", { id: opts.id }, el("h3", {}, opts.title), c);
  }

  // -- usage ----------------------------------------------------------------------------
  async function pageUsage() {
    const u = await api("run/" + encodeURIComponent(S.rid) + "/usage");
    const t = u.total || {};
    const purposes = Object.entries(u.by_purpose || {});
    const agents = Object.entries(u.by_agent || {});
    const kinds = S.head.kinds;
    let steps = u.events_per_step;
    const bucket = Math.max(1, Math.ceil(steps.length / 400));
    if (bucket > 1) {  // one point per `bucket` steps
      const out = [];
      for (let i = 0; i < steps.length; i += bucket) {
        const part = steps.slice(i, i + bucket), p = { step: part[0].step };
        for (const k of kinds) p[k] = part.reduce((a, s) => a + (s[k] || 0), 0) / part.length;
        out.push(p);
      }
      steps = out;
    }
    main(el("h2", {}, "Model use"),
      el("table", { id: "usage-total" }, el("tr", {}, ["calls", "cached", "failed", "prompt tokens", "completion tokens", "latency (s)", "mean latency (s)"].map((c) => el("th", { class: "num" }, c))),
        el("tr", {}, [t.calls, t.cached, t.failed, t.prompt_tokens, t.completion_tokens, t.latency_s, t.mean_latency_s].map((v) => el("td", { class: "num" }, fmt(v))))),
      el("div", { class: "cols" },
        el("div", {}, barChart(purposes.map(([k, v]) => ({ label: k, value: v.calls || 0 })), { title: "Calls per purpose", id: "calls-per-purpose" })),
        el("div", {}, barChart(purposes.map(([k, v]) => ({ label: k, value: (v.prompt_tokens || 0) + (v.completion_tokens || 0) })), { title: "Tokens per purpose", color: COLORS[2], id: "tokens-per-purpose" })),
        el("div", {}, barChart(purposes.map(([k, v]) => ({ label: k, value: v.mean_latency_s || 0 })), { title: "Mean latency per purpose (s)", color: COLORS[3] })),
        el("div", {}, barChart(agents.map(([k, v]) => ({ label: k, value: v.calls || 0 })), { title: "Calls per resident", color: COLORS[4] }))),
      el("h2", {}, "Events per step, by kind" + (bucket > 1 ? " (mean per " + bucket + " steps)" : "")),
      lineChart(kinds.map((k, i) => ({ name: k, color: color(i), points: steps.map((s) => ({ x: s.step, y: s[k] || 0 })) })), { width: 900, height: 260 }),
      el("p", { class: "muted" }, "Model use is the run's total as its newest checkpoint holds it; the store keeps no per-step usage."));
  }

  // -- experiment -----------------------------------------------------------------------
  async function pageExperiment() {
    const x = await api("experiment");
    document.getElementById("title").textContent = "Experiment · " + x.name;
    const cols = ["measurement", "condition", "n", "mean", "95% interval", "diff vs control", "95% interval"];
    const summary = el("table", { id: "summary" }, el("tr", {}, cols.map((c) => el("th", {}, c))),
      x.summary.map((r) => el("tr", {}, el("td", {}, r.measurement), el("td", {}, r.condition), el("td", { class: "num" }, fmt(r.n)),
        el("td", { class: "num" }, fmt(r.mean)), el("td", { class: "num" }, "[" + fmt(r.ci_low) + ", " + fmt(r.ci_high) + "]"),
        el("td", { class: "num" }, fmt(r.diff)), el("td", { class: "num" }, r.diff === null ? "–" : "[" + fmt(r.diff_low) + ", " + fmt(r.diff_high) + "]"))));
    const charts = el("div", { class: "cols", id: "plots" }, Object.entries(x.series).map(([m, byCond]) => el("div", { class: "plot", "data-measurement": m },
      el("h3", {}, m),
      lineChart(x.conditions.filter((c) => byCond[c]).map((c, i) => ({ name: c, color: color(i), points: byCond[c].map((p) => ({ x: p.step, y: p.mean, lo: p.lo, hi: p.hi })) })), { width: 520, height: 220 }))));
    const manifest = el("table", { id: "manifest" }, Object.entries(x.manifest).map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", { class: "text" }, typeof v === "object" && v !== null ? JSON.stringify(v) : String(v)))));
    const runs = el("table", { id: "runs" }, el("tr", {}, el("th", {}, "seed"), el("th", {}, "condition"), el("th", {}, "run")),
      x.runs.map((r) => el("tr", {}, el("td", { class: "num" }, r.seed), el("td", {}, r.condition), el("td", {}, link([r.id, "map"], r.id)))));
    main(el("h2", {}, "Summary (mean over seeds of each run's final value)"), summary,
      el("h2", {}, "Each measurement over the steps (mean over seeds, 95% band)"), charts,
      el("div", { class: "cols" }, el("div", {}, el("h2", {}, "Runs"), runs), el("div", {}, el("h2", {}, "Manifest"), manifest)));
  }

  // -- live -----------------------------------------------------------------------------
  function follow() {
    const badge = document.getElementById("live");
    const source = new EventSource(new URL("api/live", window.location.href));
    source.addEventListener("step", async (ev) => {
      const msg = JSON.parse(ev.data);
      badge.textContent = "live · step " + msg.steps;
      badge.className = "live on";
      if (!msg.run) return;
      if (!S.index.runs.some((r) => r.id === msg.run)) S.index.runs.push({ id: msg.run, label: msg.run });
      if (msg.run !== S.rid) {
        if (S.route[1] === "map" || !S.rid) window.location.hash = "#/" + encodeURIComponent(msg.run) + "/map";
        return;
      }
      if (S.head && msg.steps === S.head.steps_done) return;
      await loadHead();
      if (S.refresh) await S.refresh();
    });
    source.addEventListener("error", () => { badge.textContent = "live · reconnecting"; badge.className = "live"; });
  }

  async function start() {
    S.index = await api("index");
    window.addEventListener("hashchange", route);
    await route();
    if (S.index.live && !STATIC) follow();
  }
  start().catch(showError);
})();
