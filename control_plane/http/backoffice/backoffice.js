// Back office: a thin page over the control plane's JSON API (v1). The operator token is kept in
// sessionStorage (this tab only) and sent as a bearer token; the API scopes every answer and every
// action to the token's jurisdiction. Data is written into the DOM as text, never as HTML.
"use strict";

(() => {
  const TOKEN_KEY = "backoffice.token";
  const POLL_MS = 2000;
  const state = { token: null, who: null, tab: "reviews", timer: null, drafts: new Map() };

  const $ = (id) => document.getElementById(id);

  // --- formatting ------------------------------------------------------------------------------

  const digitsCache = new Map();
  function minorDigits(currency) {  // ISO 4217 exponent, from the browser's own currency data
    if (!digitsCache.has(currency)) {
      let d = 2;
      try {
        d = new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits;
      } catch (_) { /* unknown code: two decimals */ }
      digitsCache.set(currency, d);
    }
    return digitsCache.get(currency);
  }
  function money(amount, currency) {
    const d = minorDigits(currency);
    const major = amount / 10 ** d;
    try {
      return new Intl.NumberFormat("en", { style: "currency", currency, minimumFractionDigits: d,
                                           maximumFractionDigits: d }).format(major);
    } catch (_) {
      return `${major.toFixed(d)} ${currency}`;
    }
  }
  const short = (text, n) => (text.length > n ? `${text.slice(0, n)}…` : text);  // pseudonyms are 64 hex
  function time(ts) {
    if (!ts) return "—";
    const d = new Date(ts);
    const pad = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }
  function age(ts) {
    if (!ts) return "never";
    const s = Math.max(0, Math.round((Date.now() - ts) / 1000));
    return s < 60 ? `${s} s ago` : s < 3600 ? `${Math.round(s / 60)} min ago` : `${Math.round(s / 3600)} h ago`;
  }

  // --- DOM helpers -----------------------------------------------------------------------------

  function el(tag, props = {}, ...children) {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
      if (k === "class") n.className = v;
      else if (k === "dataset") Object.assign(n.dataset, v);
      else if (k.startsWith("on")) n.addEventListener(k.slice(2), v);
      else if (v !== undefined && v !== null && v !== false) n.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) n.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
    return n;
  }
  const td = (text, cls) => el("td", cls ? { class: cls } : {}, text);
  const chip = (text, kind) => el("span", { class: `st ${kind || ""}` }, text);
  function fill(bodyId, emptyId, rows) {
    $(bodyId).replaceChildren(...rows);
    if (emptyId) $(emptyId).hidden = rows.length > 0;
  }
  // A reason being typed survives the 2 s refresh (rows are rebuilt from the API each time).
  function reasonInput(key, placeholder, onInput) {
    const input = el("input", { type: "text", placeholder, maxlength: "200", "data-key": key,
                                "aria-label": placeholder });
    input.value = state.drafts.get(key) || "";
    input.addEventListener("input", () => { state.drafts.set(key, input.value); onInput(); });
    return input;
  }

  // One key per click: a retried request is the same command (getRandomValues works on plain http too).
  function requestId() {
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  }

  let toastTimer = null;
  function toast(text, isError = false) {
    const t = $("toast");
    t.textContent = text;
    t.className = isError ? "error" : "";
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { t.hidden = true; }, 5000);
  }

  // --- API -------------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, code, message) { super(message); this.status = status; this.code = code; }
  }
  async function api(path, { method = "GET", body, headers = {} } = {}) {
    const r = await fetch(path, {
      method, headers: { Authorization: `Bearer ${state.token}`, ...(body ? { "Content-Type": "application/json" } : {}),
                         ...headers },
      body: body ? JSON.stringify(body) : undefined,
    });
    const data = await r.json().catch(() => ({}));
    if (!r.ok) {
      const e = data.error || {};
      throw new ApiError(r.status, e.code || "http_error", e.message || `HTTP ${r.status}`);
    }
    return data;
  }
  async function act(button, path, body, done, headers) {
    button.disabled = true;
    try {
      await api(path, { method: "POST", body, headers });
      done();
      await refresh();
    } catch (e) {
      toast(`${e.code}: ${e.message}`, true);
      button.disabled = false;
    }
  }

  // --- panels ----------------------------------------------------------------------------------

  async function loadReviews() {
    const { reviews } = await api("/v1/reviews");
    setCount("reviews", reviews.length);
    fill("reviews-body", "reviews-empty", reviews.map((w) => {
      const key = `review:${w.withdrawal_id}`;
      const approve = el("button", { class: "act ok", "data-action": "approve" }, "Approve");
      const refuse = el("button", { class: "act bad", "data-action": "refuse" }, "Refuse");
      const sync = () => { const ok = !!(state.drafts.get(key) || "").trim(); approve.disabled = !ok; refuse.disabled = !ok; };
      const reason = reasonInput(key, "Reason (required)", sync);
      sync();
      const decide = (button, verb) => act(button, `/v1/reviews/${encodeURIComponent(w.withdrawal_id)}/${verb}`,
        { reason: reason.value.trim() }, () => { state.drafts.delete(key); toast(`${w.withdrawal_id}: ${verb}d`); });
      approve.addEventListener("click", () => decide(approve, "approve"));
      refuse.addEventListener("click", () => decide(refuse, "refuse"));
      return el("tr", { "data-id": w.withdrawal_id },
        td(w.withdrawal_id, "mono"), td(short(w.player, 12), "mono"), td(w.edge_id),
        td(money(w.amount, w.currency), "num"), td(w.rail), td(time(w.created_ts)),
        el("td", {}, ...w.flags.map((f) => el("span", { class: "flag", title: f.detail }, f.kind))),
        el("td", { class: "decide" }, reason, approve, refuse));
    }));
  }

  const KYC_OPEN = ["pending", "edd_required"];
  const KYC_KIND = { verified: "good", pending: "wait", edd_required: "wait", rejected: "bad", suspended: "bad" };
  async function loadKyc() {
    const all = document.querySelector("input[name=kyc-filter]:checked").value === "all";
    const [{ kyc }, open] = await Promise.all([
      api(all ? "/v1/kyc" : `/v1/kyc?status=${KYC_OPEN.join(",")}`),
      all ? api(`/v1/kyc?status=${KYC_OPEN.join(",")}`) : null,
    ]);
    setCount("kyc", (open ? open.kyc : kyc).length);
    fill("kyc-body", "kyc-empty", kyc.map((k) => {
      const key = `kyc:${k.jurisdiction}:${k.player}`;
      const select = el("select", { "aria-label": "New status" },
        el("option", { value: "" }, "decide…"), ...k.next.map((s) => el("option", { value: s }, s)));
      select.value = state.drafts.get(`${key}:to`) || "";
      const apply = el("button", { class: "act", "data-action": "apply" }, "Apply");
      const sync = () => { apply.disabled = !select.value || !(state.drafts.get(key) || "").trim(); };
      select.addEventListener("change", () => { state.drafts.set(`${key}:to`, select.value); sync(); });
      const reason = reasonInput(key, "Reason (required)", sync);
      sync();
      apply.addEventListener("click", () => act(apply,
        `/v1/kyc/${encodeURIComponent(k.jurisdiction)}/${encodeURIComponent(k.player)}/status`,
        { status: select.value, reason: reason.value.trim() },
        () => { toast(`${short(k.player, 12)}: ${select.value}`); state.drafts.delete(key); state.drafts.delete(`${key}:to`); }));
      return el("tr", { "data-id": k.player },
        td(short(k.player, 16), "mono"), td(k.edge_id), el("td", {}, chip(k.status, KYC_KIND[k.status])),
        td(k.reference), td(String(k.version), "num"), td(time(k.updated_ts)),
        k.next.length ? el("td", { class: "decide" }, select, reason, apply)
                      : el("td", { class: "decide muted" }, "final: no automated move"));
    }));
  }

  const WD_KIND = { paid: "good", settled: "good", requested: "wait", review: "wait", approved: "wait", paying: "wait",
                    refused: "bad", released: "bad" };
  const WD_LABEL = { requested: "awaiting decision", review: "held for review", approved: "approved, queued",
                     paying: "paying (rail asked)", paid: "paid by rail", settled: "paid, settled at edge",
                     refused: "refused", released: "released at edge" };
  async function loadWithdrawals() {
    const status = $("wd-status").value;
    const { withdrawals } = await api(`/v1/withdrawals${status ? `?status=${status}` : ""}`);
    fill("wd-body", "wd-empty", withdrawals.map((w) => el("tr", { "data-id": w.withdrawal_id },
      td(w.withdrawal_id, "mono"), td(short(w.player, 12), "mono"), td(w.edge_id),
      td(money(w.amount, w.currency), "num"), td(w.rail),
      el("td", {}, chip(WD_LABEL[w.status] || w.status, WD_KIND[w.status]),
         w.rail_status ? ` ${w.rail_status.confirmations} confirmation${w.rail_status.confirmations === 1 ? "" : "s"}` : ""),
      td(w.reason),
      td(w.rail_ref ? w.rail_ref.slice(0, 18) : "—", "mono"), td(time(w.created_ts)), td(time(w.updated_ts)))));
  }

  async function loadEdges() {
    const [{ edges }, { tables }, { commands }] = await Promise.all([
      api("/v1/edges"), api("/v1/tables"), api("/v1/commands")]);
    fill("edges-body", "edges-empty", edges.map((e) => el("tr", { "data-id": e.id },
      td(e.id, "mono"), td(e.jurisdiction),
      el("td", {}, el("span", { class: `dot ${e.healthy ? "good" : "bad"}` }), e.healthy ? "healthy" : "unhealthy"),
      td(age(e.last_heartbeat_ts)), td(String(e.reported_head_seq), "num"), td(String(e.held_seq), "num"),
      td(String(e.sync_lag), "num"), td(`${e.viewers} / ${e.viewer_capacity}`, "num"),
      td(e.has_checkpoint_key ? "registered" : "none"))));
    fill("tables-body", "tables-empty", tables.map((t) => {
      const key = `table:${t.edge_id}:${t.table_id}`;
      const buttons = [
        el("button", { class: "act ok", "data-action": "enable" }, "Enable"),
        el("button", { class: "act warn", "data-action": "disable" }, "Disable"),
        el("button", { class: "act bad", "data-action": "void" }, "Void round"),
      ];
      const sync = () => {
        const ok = !!(state.drafts.get(key) || "").trim();
        buttons[0].disabled = !ok || t.enabled;
        buttons[1].disabled = !ok || !t.enabled;
        buttons[2].disabled = !ok || !t.round_n;
      };
      const reason = reasonInput(key, "Reason (required)", sync);
      sync();
      for (const b of buttons) {
        b.addEventListener("click", () => act(b,
          `/v1/edges/${encodeURIComponent(t.edge_id)}/tables/${encodeURIComponent(t.table_id)}/${b.dataset.action}`,
          { reason: reason.value.trim() },
          () => { state.drafts.delete(key); toast(`${t.table_id}: ${b.dataset.action} sent to ${t.edge_id}`); },
          { "Idempotency-Key": requestId() }));
      }
      return el("tr", { "data-id": `${t.edge_id}/${t.table_id}` },
        td(`${t.edge_id} / ${t.table_id}`, "mono"), td(t.game),
        el("td", {}, chip(t.enabled ? "enabled" : "disabled", t.enabled ? "good" : "bad"),
           t.status_reason ? ` ${t.status_reason}` : ""),
        el("td", {}, t.feed_live === null ? "—" : chip(t.feed_live ? "live" : "down", t.feed_live ? "good" : "bad")),
        td(t.round_n ? `#${t.round_n}` : "between rounds"),
        td(t.last_void_n ? `#${t.last_void_n} ${t.last_void_reason}` : "—"),
        el("td", { class: "decide" }, reason, ...buttons));
    }));
    const tableCmds = commands.filter((c) => c.type === "table.control").slice(-8).reverse();
    fill("cmds-body", null, tableCmds.map((c) => el("tr", {},
      td(c.id.split(":").pop().slice(0, 10), "mono"), td(c.edge_id), td(c.body.table_id), td(c.body.action),
      td(c.body.by), td(c.body.reason), td(time(c.created_ts)),
      el("td", {}, c.published_ts ? chip("sent", "good") : chip("queued", "wait")))));
  }

  async function loadLog() {
    const { actions } = await api("/v1/operator-actions");
    fill("log-body", "log-empty", actions.map((a) => el("tr", {},
      td(time(a.ts)), td(a.operator), td(a.jurisdiction), td(a.action, "mono"), td(a.target, "mono"), td(a.reason))));
  }

  function setCount(tab, n) {
    const c = $(`count-${tab}`);
    c.textContent = String(n);
    c.classList.toggle("hot", n > 0);
  }

  const LOADERS = { reviews: loadReviews, kyc: loadKyc, withdrawals: loadWithdrawals, edges: loadEdges, log: loadLog };

  async function refresh() {
    try {
      // the two queues' counts are always shown; the open tab is reloaded in full
      const jobs = [LOADERS[state.tab]()];
      if (state.tab !== "reviews") jobs.push(api("/v1/reviews").then((r) => setCount("reviews", r.reviews.length)));
      if (state.tab !== "kyc") {
        jobs.push(api(`/v1/kyc?status=${KYC_OPEN.join(",")}`).then((r) => setCount("kyc", r.kyc.length)));
      }
      await Promise.all(jobs);
      $("updated").textContent = `updated ${time(Date.now()).slice(11)}`;
      document.body.dataset.loaded = state.tab;
    } catch (e) {
      if (e.status === 401) return signOut(`${e.code}: ${e.message}`);
      toast(`${e.code}: ${e.message}`, true);
    }
  }

  function show(tab) {
    state.tab = tab;
    for (const b of document.querySelectorAll(".tab")) b.classList.toggle("active", b.dataset.tab === tab);
    for (const name of Object.keys(LOADERS)) $(`panel-${name}`).hidden = name !== tab;
    delete document.body.dataset.loaded;
    history.replaceState(null, "", `#${tab}`);
    refresh();
  }

  // --- sign-in ---------------------------------------------------------------------------------

  async function signIn(token) {
    state.token = token.trim();
    try {
      const who = await api("/v1/whoami");
      if (who.role !== "operator") throw new ApiError(403, "forbidden", `a ${who.role} token cannot use the back office`);
      state.who = who;
    } catch (e) {
      signOut(`${e.code}: ${e.message}`);
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, state.token);
    $("login").hidden = true;
    $("tabs").hidden = false;
    $("who").hidden = false;
    $("who-sub").textContent = state.who.sub;
    $("who-scope").textContent = state.who.scope === null ? "all jurisdictions" : state.who.scope;
    const tab = location.hash.slice(1);
    show(LOADERS[tab] ? tab : "reviews");
    clearInterval(state.timer);
    state.timer = setInterval(refresh, POLL_MS);
  }

  function signOut(message = "") {
    clearInterval(state.timer);
    sessionStorage.removeItem(TOKEN_KEY);
    state.token = state.who = null;
    state.drafts.clear();
    $("tabs").hidden = $("who").hidden = true;
    for (const name of Object.keys(LOADERS)) $(`panel-${name}`).hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = message;
  }

  // A token handed over in the fragment (never sent to a server) is taken and wiped from the URL.
  function tokenFromFragment() {
    const m = location.hash.match(/(?:^#|&)token=([^&]+)/);
    if (!m) return false;
    history.replaceState(null, "", location.pathname);
    clearInterval(state.timer);
    signIn(decodeURIComponent(m[1]));
    return true;
  }

  document.addEventListener("DOMContentLoaded", () => {
    for (const b of document.querySelectorAll(".tab")) b.addEventListener("click", () => show(b.dataset.tab));
    for (const r of document.querySelectorAll("input[name=kyc-filter]")) r.addEventListener("change", refresh);
    $("wd-status").addEventListener("change", refresh);
    $("signout").addEventListener("click", () => signOut());
    $("login-form").addEventListener("submit", (ev) => { ev.preventDefault(); signIn($("login-token").value); });
    window.addEventListener("hashchange", tokenFromFragment);
    if (tokenFromFragment()) {
      // signed in with the token the link carried
    } else if (sessionStorage.getItem(TOKEN_KEY)) {
      signIn(sessionStorage.getItem(TOKEN_KEY));
    } else {
      signOut();
    }
  });
})();
