// Player web client: discovery, WebSocket-driven betting, fairness verification, wallet and
// responsible-gambling pages. Plain ES modules, no build step, no external resources.

import * as F from "./fairness.js";
import { LiveVideo, latencyClass } from "./video.js";
import { discoverEdge, DiscoveryError } from "./discovery.js";
import * as BJ from "./blackjack.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const CHIPS = [100, 500, 2500, 10000];
const ERRORS = {
  betting_closed: "Betting is closed for this round",
  insufficient_funds: "Insufficient funds",
  below_table_min: "Below the table minimum",
  above_spot_max: "Above the maximum for this spot",
  above_round_max: "Above the maximum per round",
  loss_limit_reached: "This bet would exceed your loss limit",
  deposit_limit_exceeded: "This deposit would exceed your deposit limit",
  player_excluded: "You are self-excluded",
  player_on_break: "You are on a break",
  table_not_live: "The table is not live (no studio feed)",
  stale_rules: "The table rules changed; try again",
  wrong_jurisdiction: "This edge does not serve your jurisdiction",
  unauthorized: "Your session token is invalid or expired",
  ...BJ.ERRORS,
};

const S = {
  token: params.get("token") || "",
  cp: params.get("cp") || "",
  api: "", ws: null, wsUrl: "", me: null, wallet: null, limits: null,
  tables: new Map(), current: null, chip: CHIPS[0], req: 0, pending: new Map(),
  stakes: new Map(),            // `${table}:${chain}:${n}` -> Map(spot -> {confirmed, pending})
  clockOffset: 0, bestRtt: Infinity, blocked: false, deposits: [], verifications: [],
  video: null, videoStats: null, edge: null, log: [],
};
window.__casino = S;   // for tests and support staff: state, video stats, verifications

// ---------------------------------------------------------------------------------- helpers

function money(cents, signed = false) {
  if (cents === null || cents === undefined) return "—";
  const cur = (S.wallet && S.wallet.currency) || (S.me && S.me.currency) || "EUR";
  const fmt = new Intl.NumberFormat(undefined, { style: "currency", currency: cur, signDisplay: signed ? "exceptZero" : "auto" });
  return fmt.format(cents / 100);
}
function toCents(v) { return Math.round(parseFloat(v) * 100); }
function serverNow() { return Date.now() + S.clockOffset; }
function fmtDuration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  return h ? `${h}:${String(m).padStart(2, "0")}:${String(sec).padStart(2, "0")}` : `${m}:${String(sec).padStart(2, "0")}`;
}
function fmtTs(ts) { return ts ? new Date(ts).toLocaleString() : "—"; }
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k === "dataset") Object.assign(e.dataset, v);
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c.nodeType ? c : String(c));
  return e;
}
let toastTimer = null;
// The reality-check select shows the edge's setting, but a refresh (wallet, limits) must not
// overwrite a choice the player has made and not yet saved: update it only when the edge's
// value changed since it was last shown.
let realityShown = null;
function syncRealityMinutes(min) {
  const v = min ? String(min) : "";
  if (v === realityShown) return;
  realityShown = v;
  $("reality-minutes").value = v;
}
function toast(msg) {
  const t = $("toast"); t.textContent = msg; t.hidden = false;
  clearTimeout(toastTimer); toastTimer = setTimeout(() => { t.hidden = true; }, 4000);
}
function banner(msg, kind = "error") {
  const b = $("banner");
  if (!msg) { b.hidden = true; return; }
  b.textContent = msg; b.className = `banner ${kind === "info" ? "info" : ""}`; b.hidden = false;
}
function errText(e) { return (e && (ERRORS[e.code] || e.message)) || String(e); }
function block(title, text, { wallet = false } = {}) {
  S.blocked = true;
  $("blocked-title").textContent = title; $("blocked-text").textContent = text; $("blocked").hidden = false;
  // A player who may not play can still take their money out.
  $("blocked-wallet").hidden = !(wallet && S.api);
  $("blocked-wallet").onclick = () => {
    $("blocked").hidden = true; document.body.classList.add("restricted");
    for (const v of document.querySelectorAll(".view")) v.hidden = v.id !== "view-wallet";
    for (const x of document.querySelectorAll("#nav button")) x.classList.toggle("active", x.dataset.view === "wallet");
    refreshWallet(); refreshWithdrawals();
  };
  if (S.ws) { try { S.ws.close(); } catch { /* already closed */ } }
  if (S.video) S.video.stop();
}
function addLog(text) {
  const li = el("li", {}, `${new Date().toLocaleTimeString()} ${text}`);
  $("bet-log").prepend(li);
  while ($("bet-log").children.length > 30) $("bet-log").lastChild.remove();
}

class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status; this.code = e.code || `http_${status}`; this.details = e.details || {};
  }
}
async function api(path, { method = "GET", body } = {}) {
  const headers = { "Authorization": `Bearer ${S.token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(S.api + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

// ---------------------------------------------------------------------------------- boot

async function boot() {
  renderChips();
  wireNav(); wireForms();
  if (!S.token) {
    block("Sign in needed", "Open this page from the casino's lobby: the link carries your session token.");
    return;
  }
  try {
    S.edge = await discoverEdge({ cp: S.cp, token: S.token, self: location.origin });
  } catch (e) {
    if (e instanceof DiscoveryError && e.code === "no_edge_in_jurisdiction") {
      block("Not available in your jurisdiction",
        `There is no casino edge in your jurisdiction${e.jurisdiction ? ` (${e.jurisdiction})` : ""}. ` +
        "Play is only offered from servers in your own jurisdiction, so you cannot play here." +
        (e.message ? ` (${e.message})` : ""));
    } else {
      block("No casino edge reachable", errText(e));
    }
    return;
  }
  S.api = S.edge.url.replace(/\/$/, "");
  S.wsUrl = S.api.replace(/^http/, "ws") + "/v1/ws?token=" + encodeURIComponent(S.token);
  $("fair-doc").href = `${S.api}/v1/docs/fairness`;
  try {
    S.me = await api("/v1/me");
  } catch (e) {
    if (e.code === "wrong_jurisdiction") {
      block("Not available in your jurisdiction",
        `This edge serves jurisdiction ${e.details.jurisdiction || "?"} only; you cannot be served from abroad.`);
    } else if (e.code === "unauthorized") {
      block("Session expired", "Your session token is invalid or expired. Sign in again from the lobby.");
    } else {
      block("Cannot reach the casino", errText(e));
    }
    return;
  }
  $("edge-info").textContent = `${S.me.edge_id} · ${S.me.jurisdiction}` +
    (S.edge.rttMs !== undefined ? ` · ${Math.round(S.edge.rttMs)} ms` : "");
  $("edge-info").title = `Edge ${S.me.edge_id} (${S.edge.how})`;
  S.video = new LiveVideo($("video"), { token: S.token, clockOffset: () => S.clockOffset, onState: onVideo });
  connect();
  refreshWallet(); refreshLimits(); refreshWithdrawals();
  setInterval(tick, 200);
  setInterval(() => { if (!S.blocked) refreshWallet(); }, 10000);
  setInterval(ping, 2000);
}

// ---------------------------------------------------------------------------------- WebSocket

let wsBackoff = 500;
function connect() {
  if (S.blocked) return;
  const ws = new WebSocket(S.wsUrl);
  S.ws = ws;
  ws.onopen = () => { wsBackoff = 500; banner(null); ping(); };
  ws.onmessage = (ev) => { try { handle(JSON.parse(ev.data)); } catch (e) { console.error(e); } };
  ws.onclose = () => {
    if (S.ws !== ws || S.blocked) return;
    banner("Connection to the table lost — reconnecting…", "info");
    setTimeout(connect, wsBackoff); wsBackoff = Math.min(wsBackoff * 2, 8000);
  };
}
function send(obj) {
  if (!S.ws || S.ws.readyState !== WebSocket.OPEN) { toast("Not connected to the table"); return false; }
  S.ws.send(JSON.stringify(obj)); return true;
}
function ping() {
  if (S.ws && S.ws.readyState === WebSocket.OPEN) send({ type: "ping", t: Date.now() });
}

// The blackjack table panel; it sees every message of the table shown (blackjack.js).
const bj = new BJ.Panel({ send, placeBet: (spot) => placeBet(spot), money, serverNow, toast, log: addLog,
  api: (path) => api(path), player: () => S.player });
function isBlackjack(tid) { const t = S.tables.get(tid); return !!t && t.game === "blackjack"; }

function handle(m) {
  window.dispatchEvent(new CustomEvent("casino:message", { detail: m }));  // overlays (reveal-overlay.js)
  if ((m.table_id === S.current && isBlackjack(S.current)) || m.type === "act.accepted" || m.type === "act.refused") {
    bj.onMessage(m);
  }
  switch (m.type) {
    case "hello": {
      setWallet(m.wallet);
      S.player = m.player;
      for (const t of m.tables) S.tables.set(t.table_id, tableFromView(t));
      if (!S.current || !S.tables.has(S.current)) selectTable(params.get("table") || m.tables[0]?.table_id);
      else renderTable();
      renderTabs();
      for (const n of m.notices || []) handle(n);
      break;
    }
    case "pong": {
      const now = Date.now(), rtt = now - m.t;
      // Keep the offset from the fastest exchange seen (least queueing), refreshed slowly.
      if (rtt <= S.bestRtt * 1.5 || rtt < 5) {
        S.bestRtt = Math.min(S.bestRtt, rtt);
        S.clockOffset = m.server_ts - (m.t + now) / 2;
      }
      break;
    }
    case "table": S.tables.set(m.table_id, tableFromView(m)); renderTable(); break;
    case "round.opened": {
      const t = S.tables.get(m.table_id); if (!t) break;
      t.round = { chain_id: m.chain_id, n: m.n, status: "open", closes_ts: m.closes_ts, opened_at: serverNow() };
      t.chain = { chain_id: m.chain_id, commitment: m.commitment, length: m.chain_length };
      t.rules_version = m.rules_version; t.live = true;
      if (m.table_id === S.current) { renderRound(); renderFairHead(); $("result-overlay").hidden = true; clearWins(); }
      break;
    }
    case "round.closed": {
      const t = S.tables.get(m.table_id); if (!t || !t.round) break;
      t.round.status = "closed"; if (m.table_id === S.current) renderRound();
      break;
    }
    case "round.settled": onSettled(m); break;
    case "round.voided": {
      const t = S.tables.get(m.table_id); if (!t) break;
      if (t.round) t.round.status = "voided";
      if (m.table_id === S.current) { renderRound(); addLog(`Round ${m.n} voided (${m.reason}); stakes returned.`); }
      break;
    }
    case "table.live": case "table.down": {
      const t = S.tables.get(m.table_id); if (!t) break;
      t.live = m.type === "table.live"; t.feed_live = t.live;
      renderTabs(); if (m.table_id === S.current) renderRound();
      break;
    }
    case "bet.accepted": onBetAccepted(m); break;
    case "bet.refused": onBetRefused(m); break;
    case "settlement": {
      setBalance(m.balance, m.net_position);
      const won = m.payout > 0;
      const text = won ? `You won ${money(m.payout)} (staked ${money(m.staked)})` : `No win this round (staked ${money(m.staked)})`;
      $("result").innerHTML = "";
      $("result").append(el("span", { class: won ? "win" : "loss", id: "settlement-text" }, text));
      addLog(`${m.table_id} round ${m.n}: ${text}. Balance ${money(m.balance)}.`);
      break;
    }
    case "refund": setBalance(m.balance); addLog(`Refund ${money(m.amount)} (${m.reason}).`); break;
    case "deposit": {
      setBalance(m.balance);
      const d = S.deposits.find((x) => x.deposit_id === m.deposit_id);
      if (d) d.status = "credited"; else S.deposits.push({ deposit_id: m.deposit_id, amount: m.amount, status: "credited" });
      renderDeposits(); toast(`Deposit of ${money(m.amount)} credited`); refreshWallet();
      break;
    }
    case "deposit.declined": {
      const d = S.deposits.find((x) => x.deposit_id === m.deposit_id);
      if (d) { d.status = "declined"; d.reason = m.reason; }
      renderDeposits(); toast(`Deposit declined by the payment provider (${m.reason})`);
      break;
    }
    case "withdrawal":
      setBalance(m.balance); refreshWithdrawals(); refreshWallet();
      toast(`Withdrawal ${m.status}${m.reason ? `: ${m.reason}` : ""}`);
      break;
    case "reality_check": showRealityCheck(m); break;
    case "session.ended": {
      const until = m.until_ts ? ` until ${fmtTs(m.until_ts)}` : "";
      if (m.reason === "self_exclusion") block("You are self-excluded", `Your self-exclusion is in force${until}. Your session has ended; open bets were refunded.`, { wallet: true });
      else if (m.reason === "break") block("You are on a break", `Your break lasts${until}. Your session has ended; open bets were refunded.`, { wallet: true });
      else block("Session ended", `Your session has ended (${m.reason}).`);
      break;
    }
    case "error": {
      const e = m.error || {};
      if (e.code === "player_excluded") {
        block("You are self-excluded", `You cannot play${e.details?.until_ts ? ` until ${fmtTs(e.details.until_ts)}` : ""}. Your self-exclusion cannot be lifted early.`, { wallet: true });
      } else if (e.code === "player_on_break") {
        block("You are on a break", `You cannot play${e.details?.until_ts ? ` until ${fmtTs(e.details.until_ts)}` : ""}.`, { wallet: true });
      } else if (e.code === "wrong_jurisdiction") {
        block("Not available in your jurisdiction", errText(e));
      } else if (e.code === "unauthorized") {
        block("Session expired", "Your session token is invalid or expired. Sign in again from the lobby.");
      } else if (m.req !== undefined && S.pending.has(m.req)) {
        onBetRefused(m);
      } else {
        toast(errText(e));
      }
      break;
    }
    default: break;
  }
}

function tableFromView(v) {
  return {
    table_id: v.table_id, game: v.game, live: v.live, feed_live: v.feed_live, rules: v.rules,
    rules_version: v.rules && v.rules.version,
    chain: v.chain ? { chain_id: v.chain.chain_id, commitment: v.chain.commitment, length: v.chain.length } : null,
    round: v.round ? { chain_id: v.round.chain_id, n: v.round.n, status: v.round.status, closes_ts: v.round.closes_ts,
      opened_at: v.round.closes_ts - (v.betting_window_s || 0) * 1000 } : null,
    window_ms: (v.betting_window_s || 0) * 1000, last: null,
  };
}

// ---------------------------------------------------------------------------------- bets

function roundKey(tid, r) { return `${tid}:${r.chain_id}:${r.n}`; }
function stakesFor(tid, r) {
  const k = roundKey(tid, r);
  if (!S.stakes.has(k)) S.stakes.set(k, new Map());
  return S.stakes.get(k);
}

function placeBet(spot) {
  const t = S.tables.get(S.current);
  if (!t || !t.round || t.round.status !== "open" || serverNow() > t.round.closes_ts) {
    toast(ERRORS.betting_closed); return;
  }
  const req = ++S.req;
  const bet = { type: "bet", req, table_id: t.table_id, spot, amount: S.chip, player_seed: $("player-seed").value || "" };
  if (t.rules_version) bet.rules_version = t.rules_version;
  if (!send(bet)) return;
  S.pending.set(req, { table_id: t.table_id, spot, amount: S.chip, round: { ...t.round } });
  const st = stakesFor(t.table_id, t.round);
  const cur = st.get(spot) || { confirmed: 0, pending: 0 };
  cur.pending += S.chip; st.set(spot, cur);
  renderStakes();
}

function onBetAccepted(m) {
  const p = S.pending.get(m.req); S.pending.delete(m.req);
  const st = stakesFor(m.table_id, { chain_id: m.chain_id, n: m.n });
  const cur = st.get(m.spot) || { confirmed: 0, pending: 0 };
  cur.confirmed += m.amount; if (p) cur.pending = Math.max(0, cur.pending - p.amount);
  st.set(m.spot, cur);
  setBalance(m.balance);
  S.lastBet = { table_id: m.table_id, chain_id: m.chain_id, n: m.n, bet_id: m.bet_id, spot: m.spot };
  if (isBlackjack(m.table_id) && m.table_id === S.current) bj.onAccepted(m);
  addLog(`✓ Bet confirmed: ${money(m.amount)} on ${m.spot} (${m.table_id} round ${m.n}, ${m.bet_id})`);
  renderStakes();
}

function onBetRefused(m) {
  const p = S.pending.get(m.req); S.pending.delete(m.req);
  if (p) {
    const st = stakesFor(p.table_id, p.round);
    const cur = st.get(p.spot);
    if (cur) cur.pending = Math.max(0, cur.pending - p.amount);
  }
  const msg = errText(m.error);
  toast(`Bet refused: ${msg}`); addLog(`✗ Bet refused${p ? ` (${money(p.amount)} on ${p.spot})` : ""}: ${msg}`);
  renderStakes();
}

// ---------------------------------------------------------------------------------- settlement and fairness

async function onSettled(m) {
  const t = S.tables.get(m.table_id); if (!t) return;
  const commitmentShown = t.chain && t.chain.chain_id === m.chain_id ? t.chain.commitment : null;
  if (t.round) t.round.status = "settled";
  t.last = { ...m };
  if (m.table_id === S.current) {
    renderRound();
    showOutcome(t, m);
  }
  const v = { table_id: m.table_id, chain_id: m.chain_id, n: m.n, game: m.game, status: "checking",
    server_seed: m.server_seed, client_seed: m.client_seed, outcome: m.outcome, steps: [] };
  S.verifications.unshift(v); if (S.verifications.length > 50) S.verifications.pop();
  if (m.table_id === S.current) renderFairLast(v);
  try {
    const proof = await api(`/v1/tables/${encodeURIComponent(m.table_id)}/rounds/${m.chain_id}/${m.n}`);
    // The proof must be the round announced on the socket.
    const same = proof.server_seed === m.server_seed && proof.client_seed === m.client_seed &&
      F.canonical(proof.outcome) === F.canonical(m.outcome);
    const mine = S.lastBet && S.lastBet.table_id === m.table_id && S.lastBet.n === m.n && S.lastBet.chain_id === m.chain_id
      ? S.lastBet.bet_id : null;
    const r = m.game === "blackjack"
      ? await BJ.verifyRound(proof, commitmentShown, mine, mine && bj.myBet && bj.myBet.bet_id === mine ? bj.mine : null)
      : await F.verifyRound(proof, commitmentShown);
    if (!same) r.steps.push({ name: "announced", ok: false, detail: "the proof differs from the announced result" });
    v.steps = r.steps; v.status = r.ok && same ? "verified" : "failed";
  } catch (e) {
    v.status = "failed"; v.steps = [{ name: "proof", ok: false, detail: `could not fetch the proof: ${errText(e)}` }];
  }
  renderFairHistory();
  if (m.table_id === S.current && S.verifications.find((x) => x.table_id === S.current) === v) renderFairLast(v);
}

function showOutcome(t, m) {
  const o = m.outcome;
  let text;
  if (t.game === "blackjack") {
    $("result").innerHTML = "";
    $("result").append(el("span", { id: "outcome-text" }, `Round ${m.n}: ${BJ.describe(o)}`));
    return;
  }
  if (t.game === "roulette") {
    const color = o.number === 0 ? "green" : F.isRed(o.number) ? "red" : "black";
    text = `${o.number} ${color}`;
  } else {
    text = `${o.winner.toUpperCase()} wins`;
  }
  const ov = $("result-overlay"); ov.textContent = text; ov.hidden = false;
  $("result").innerHTML = "";
  $("result").append(el("span", { id: "outcome-text" }, `Round ${m.n}: ${F.describeOutcome(t.game, o)}`));
  clearWins();
  const wins = t.game === "roulette" ? winningRouletteSpots(o.number) : [o.winner];
  for (const s of wins) document.querySelector(`[data-spot="${s}"]`)?.classList.add("win");
}

function winningRouletteSpots(n) {
  const spots = [`straight:${n}`];
  for (const s of ["red", "black", "odd", "even", "low", "high", "dozen:1", "dozen:2", "dozen:3", "column:1", "column:2", "column:3"]) {
    if (F.payout("roulette", s, 1, { number: n }) > 0) spots.push(s);
  }
  return spots;
}
function clearWins() { document.querySelectorAll(".spot.win").forEach((e) => e.classList.remove("win")); }

function renderFairHead() {
  const t = S.tables.get(S.current); if (!t) return;
  $("fair-chain").textContent = t.chain ? t.chain.chain_id : "—";
  $("fair-commitment").textContent = t.chain ? t.chain.commitment : "—";
  $("fair-round").textContent = t.round ? `${t.round.n}${t.chain ? ` of ${t.chain.length}` : ""}` : "—";
}
function renderFairLast(v) {
  const st = $("fair-status");
  if (!v) { st.textContent = "waiting"; st.className = "badge"; $("fair-steps").innerHTML = ""; return; }
  st.textContent = v.status === "verified" ? "verified ✓" : v.status === "failed" ? "NOT verified ✗" : "checking…";
  st.className = `badge ${v.status === "verified" ? "ok" : v.status === "failed" ? "fail" : "busy"}`;
  $("fair-server-seed").textContent = v.server_seed;
  $("fair-client-seed").textContent = v.client_seed;
  $("fair-outcome").textContent = `#${v.n}: ${v.game === "blackjack" ? BJ.describe(v.outcome) : F.describeOutcome(v.game, v.outcome)}`;
  const ul = $("fair-steps"); ul.innerHTML = "";
  for (const s of v.steps) ul.append(el("li", { class: s.ok ? "ok" : "fail" }, `${s.name}: ${s.detail}`));
}
function renderFairHistory() {
  const ol = $("fair-history"); ol.innerHTML = "";
  for (const v of S.verifications.filter((x) => x.table_id === S.current).slice(0, 8)) {
    ol.append(el("li", {}, `#${v.n} ${v.game === "blackjack" ? BJ.describe(v.outcome) : F.describeOutcome(v.game, v.outcome)} — ${v.status}`));
  }
}

// ---------------------------------------------------------------------------------- rendering

function renderChips() {
  const box = $("chips"); box.innerHTML = "";
  for (const c of CHIPS) {
    box.append(el("button", { class: `chip c${c}${c === S.chip ? " active" : ""}`, "aria-label": `chip ${money(c)}`,
      dataset: { chip: c }, onclick: () => { S.chip = c; renderChips(); } }, c >= 100 ? String(c / 100) : money(c)));
  }
}

function renderTabs() {
  const box = $("table-tabs"); box.innerHTML = "";
  for (const t of S.tables.values()) {
    box.append(el("button", { class: t.table_id === S.current ? "active" : "", role: "tab", dataset: { table: t.table_id },
      onclick: () => selectTable(t.table_id) },
    el("span", { class: `live-dot${t.live ? " on" : ""}` }), `${{ roulette: "Roulette", blackjack: "Blackjack" }[t.game] || "Baccarat"} · ${t.table_id}`));
  }
}

function selectTable(tid) {
  if (!tid || !S.tables.has(tid)) return;
  const changed = S.current !== tid;
  S.current = tid;
  renderTabs(); renderTable();
  if (changed && S.video) S.video.play(S.api, tid);
}

function renderTable() {
  const t = S.tables.get(S.current); if (!t) return;
  const board = $("board"); board.innerHTML = ""; board.className = `board ${t.game}`;
  if (t.game === "roulette") buildRoulette(board);
  else if (t.game === "blackjack") { bj.reset(); bj.build(board); bj.resume(t.table_id, t.round); }
  else buildBaccarat(board);
  renderRound(); renderStakes(); renderFairHead();
  const last = S.verifications.find((x) => x.table_id === S.current);
  renderFairLast(last); renderFairHistory();
  $("result-overlay").hidden = true; $("result").innerHTML = "";
}

function spotButton(spot, label, cls, pos) {
  const b = el("button", { class: `spot ${cls || ""}`, dataset: { spot }, "aria-label": `bet on ${spot}`,
    onclick: () => placeBet(spot) }, label);
  if (pos) for (const [k, v] of Object.entries(pos)) b.style.setProperty(k, v);
  return b;
}

function buildRoulette(board) {
  // Wide: 0 | 12 columns of 3 numbers | 2:1. Narrow (phone): 0 on top, rows of 3 numbers.
  board.append(spotButton("straight:0", "0", "zero num", { "--wr": "1 / span 3", "--wc": "1", "--nr": "1", "--nc": "1 / span 3" }));
  for (let k = 1; k <= 36; k++) {
    const col = Math.floor((k - 1) / 3), row = (k - 1) % 3;
    board.append(spotButton(`straight:${k}`, String(k), `num ${F.isRed(k) ? "red" : "black"}`, {
      "--wr": String(3 - row), "--wc": String(2 + col), "--nr": String(2 + col), "--nc": String(1 + row) }));
  }
  for (let c = 1; c <= 3; c++) {
    board.append(spotButton(`column:${c}`, "2:1", "num", { "--wr": String(4 - c), "--wc": "14", "--nr": "14", "--nc": String(c) }));
  }
  for (let d = 1; d <= 3; d++) {
    board.append(spotButton(`dozen:${d}`, `${["1st", "2nd", "3rd"][d - 1]} 12`, "num",
      { "--wr": "4", "--wc": `${2 + (d - 1) * 4} / span 4`, "--nr": "15", "--nc": String(d) }));
  }
  const outs = [["low", "1–18", ""], ["even", "Even", ""], ["red", "Red", "red"], ["black", "Black", "black"], ["odd", "Odd", ""], ["high", "19–36", ""]];
  outs.forEach(([s, label, cls], i) => {
    board.append(spotButton(s, label, `num ${cls}`, { "--wr": "5", "--wc": `${2 + i * 2} / span 2`,
      "--nr": String(16 + Math.floor(i / 3)), "--nc": String(1 + (i % 3)) }));
  });
}

function buildBaccarat(board) {
  board.append(spotButton("player", el("span", {}, "Player", el("small", {}, "1:1")), "player"));
  board.append(spotButton("tie", el("span", {}, "Tie", el("small", {}, "8:1")), "tie"));
  board.append(spotButton("banker", el("span", {}, "Banker", el("small", {}, "0.95:1")), "banker"));
}

function renderStakes() {
  const t = S.tables.get(S.current);
  document.querySelectorAll(".spot .stake").forEach((e) => e.remove());
  if (!t || !t.round) return;
  const st = S.stakes.get(roundKey(t.table_id, t.round)); if (!st) return;
  for (const [spot, v] of st) {
    const b = document.querySelector(`.spot[data-spot="${spot}"]`); if (!b) continue;
    if (v.confirmed) b.append(el("span", { class: "stake", title: "confirmed by the server" }, money(v.confirmed)));
    else if (v.pending) b.append(el("span", { class: "stake pending", title: "awaiting confirmation" }, money(v.pending)));
  }
}

function renderRound() {
  const t = S.tables.get(S.current); if (!t) return;
  const open = t.round && t.round.status === "open" && serverNow() <= t.round.closes_ts;
  document.querySelectorAll(".board .spot").forEach((b) => { b.disabled = !open; });
  $("round-status").dataset.state = !t.live ? "down" : t.round ? t.round.status : "idle";
  renderCountdown();
  renderStakes();
}

function renderCountdown() {
  const t = S.tables.get(S.current); if (!t) return;
  const rs = $("round-status"), fill = $("countdown-fill");
  if (!t.live) { rs.textContent = "Table paused — no studio feed. Bets are not taken."; fill.style.width = "0"; return; }
  if (!t.round) { rs.textContent = "Waiting for the next round…"; fill.style.width = "0"; return; }
  const r = t.round;
  if (r.status === "open") {
    const left = r.closes_ts - serverNow();
    if (left > 0) {
      rs.textContent = `Round ${r.n} — place your bets: ${(left / 1000).toFixed(1)} s`;
      const total = t.window_ms || (r.closes_ts - r.opened_at) || 1;
      fill.style.width = `${Math.max(0, Math.min(100, (100 * left) / total))}%`;
      return;
    }
    rs.textContent = `Round ${r.n} — no more bets`;
  } else if (r.status === "closed") rs.textContent = `Round ${r.n} — no more bets`;
  else if (r.status === "settled") rs.textContent = `Round ${r.n} — result`;
  else if (r.status === "voided") rs.textContent = `Round ${r.n} — voided, stakes returned`;
  fill.style.width = "0";
}

let wasOpen = false;
function tick() {
  const t = S.tables.get(S.current);
  const open = !!(t && t.round && t.round.status === "open" && serverNow() <= t.round.closes_ts);
  if (open !== wasOpen) { wasOpen = open; renderRound(); } else renderCountdown();
  if (t && t.game === "blackjack") bj.tick();
  renderSession();
}

function renderSession() {
  const w = S.wallet; if (!w || !w.session) return;
  const s = w.session;
  const elapsed = s.started_ts ? serverNow() - s.started_ts : 0;
  $("session-clock").textContent = fmtDuration(elapsed);
  $("rg-elapsed").textContent = fmtDuration(elapsed);
  $("rg-started").textContent = fmtTs(s.started_ts);
  $("net-position").textContent = money(s.net_position, true);
  $("net-position").className = s.net_position < 0 ? "status-refused" : s.net_position > 0 ? "status-paid" : "";
  $("rg-net").textContent = money(s.net_position, true);
  $("rg-staked").textContent = money(s.staked);
}

function setWallet(w) {
  S.wallet = w;
  $("balance").textContent = money(w.balance);
  $("w-balance").textContent = money(w.balance);
  $("w-inplay").textContent = money(w.in_play);
  $("w-pending").textContent = money(w.pending_withdrawal);
  $("w-kyc").textContent = w.kyc;
  if (w.session) syncRealityMinutes(w.session.reality_check_min);
  renderSession();
}
function setBalance(balance, net) {
  if (!S.wallet) return;
  S.wallet.balance = balance;
  if (net !== undefined && S.wallet.session) S.wallet.session.net_position = net;
  $("balance").textContent = money(balance); $("w-balance").textContent = money(balance);
  renderSession();
}

let lastLatencyReport = 0;
function onVideo(st) {
  S.videoStats = st;
  // Report the measured glass-to-glass figure now and then: the edge's latency alerts feed on it.
  if (st.state === "playing" && st.source === "capture" && st.latencyMs !== null && S.current
      && performance.now() - lastLatencyReport > 10000) {
    lastLatencyReport = performance.now();
    api("/v1/telemetry/latency", { method: "POST", body: { table_id: S.current, glass_to_glass_ms: st.latencyMs } })
      .catch(() => { /* telemetry is best effort */ });
  }
  const lat = $("latency");
  const playing = st.state === "playing";
  const ms = playing ? st.latencyMs : null;
  lat.className = `pill latency ${playing ? latencyClass(ms) : "unknown"}`;
  lat.textContent = playing ? (ms === null ? "video live" : `${Math.round(ms)} ms`) : "video —";
  lat.dataset.ms = ms === null || ms === undefined ? "" : String(Math.round(ms));
  lat.title = playing ? `Live video latency (${st.source === "capture" ? "glass to glass, from the capture clock in the picture" : "estimated from WebRTC statistics"})` : "No live video";
  const stall = $("stall");
  if (playing) stall.hidden = true;
  else {
    stall.hidden = false;
    stall.textContent = st.state === "stalled" ? "Video stalled — reconnecting… (bets still work; results come from the server)"
      : st.error ? `Video unavailable: ${st.error}` : "Connecting to the live video…";
  }
}

// ---------------------------------------------------------------------------------- wallet, limits, RG

async function refreshWallet() { try { setWallet(await api("/v1/wallet")); } catch (e) { /* transient */ } }
async function refreshWithdrawals() {
  try {
    const rows = await api("/v1/wallet/withdrawals");
    const tb = $("withdrawals"); tb.innerHTML = "";
    for (const w of rows.slice().reverse()) {
      // The edge's list says "released" for a payout the cloud refused (funds back in the balance).
      const status = { requested: "pending", released: "refused" }[w.status] || w.status;
      tb.append(el("tr", { dataset: { id: w.withdrawal_id } }, el("td", {}, el("code", {}, w.withdrawal_id)), el("td", {}, money(w.amount)),
        el("td", {}, w.rail), el("td", { class: `status-${status}` }, status + (w.reason ? ` — ${w.reason}` : ""))));
    }
  } catch (e) { /* transient */ }
}
function renderDeposits() {
  const ul = $("deposits"); ul.innerHTML = "";
  for (const d of S.deposits.slice().reverse()) {
    ul.append(el("li", { dataset: { id: d.deposit_id } }, `${money(d.amount)} — `,
      el("span", { class: d.status === "credited" ? "status-paid" : d.status === "declined" ? "status-refused" : "status-pending" },
        d.status === "credited" ? "credited" : d.status === "declined" ? `declined — ${d.reason}`
          : "requested, awaiting payment confirmation"), ` (${d.deposit_id})`));
  }
}

const LIMIT_NAMES = { deposit: "Deposit", loss: "Loss" };
const PERIOD_NAMES = { "24h": "24 hours", "7d": "7 days", "30d": "30 days" };
async function refreshLimits() {
  try {
    const v = await api("/v1/limits"); S.limits = v;
    const tb = $("limits"); tb.innerHTML = "";
    for (const [key, lim] of Object.entries(v.limits)) {
      const [kind, period] = key.split("_");
      const input = el("input", { type: "number", min: "1", step: "0.01", placeholder: "amount", "aria-label": `${key} amount` });
      const pending = lim.pending_effective_ts
        ? `${lim.pending_amount === null ? "no limit" : money(lim.pending_amount)} from ${fmtTs(lim.pending_effective_ts)}` : "—";
      tb.append(el("tr", { dataset: { limit: key } },
        el("td", {}, `${LIMIT_NAMES[kind] || kind} / ${PERIOD_NAMES[period] || period}`),
        el("td", { class: "now" }, lim.amount === null ? "none" : money(lim.amount)),
        el("td", { class: "pending" }, pending),
        el("td", {}, el("span", { class: "row" }, input,
          el("button", { onclick: () => setLimit(kind, period, input.value ? toCents(input.value) : undefined) }, "Set"),
          el("button", { onclick: () => setLimit(kind, period, null) }, "Remove")))));
    }
    if (v.reality_check_min !== undefined) syncRealityMinutes(v.reality_check_min);
  } catch (e) { /* transient */ }
}
async function setLimit(kind, period, amount) {
  if (amount === undefined || (amount !== null && !(amount > 0))) { toast("Enter an amount"); return; }
  try {
    const r = await api(`/v1/limits/${kind}/${period}`, { method: "PUT", body: { amount } });
    const now = serverNow();
    toast(r.effective_ts > now + 1000 ? `Limit change takes effect ${fmtTs(r.effective_ts)}` : "Limit updated");
    refreshLimits();
  } catch (e) { toast(errText(e)); }
}

function confirmDialog(text) {
  return new Promise((resolve) => {
    const d = $("confirm-dialog"); $("confirm-text").textContent = text;
    const done = (v) => { d.close(); $("confirm-yes").onclick = null; $("confirm-no").onclick = null; resolve(v); };
    $("confirm-yes").onclick = () => done(true); $("confirm-no").onclick = () => done(false);
    d.showModal();
  });
}

function showRealityCheck(m) {
  $("rc-elapsed").textContent = fmtDuration(m.elapsed_ms);
  $("rc-net").textContent = money(m.net_position, true);
  $("rc-staked").textContent = money(m.staked);
  const d = $("reality-dialog"); if (!d.open) d.showModal();
}

function wireNav() {
  for (const b of document.querySelectorAll("#nav button")) {
    b.addEventListener("click", () => {
      for (const x of document.querySelectorAll("#nav button")) x.classList.toggle("active", x === b);
      for (const v of document.querySelectorAll(".view")) v.hidden = v.id !== `view-${b.dataset.view}`;
      if (b.dataset.view === "wallet") { refreshWallet(); refreshWithdrawals(); }
      if (b.dataset.view === "rg") { refreshLimits(); refreshWallet(); }
    });
  }
}

function wireForms() {
  $("deposit-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const amount = toCents($("deposit-amount").value);
    try {
      const r = await api("/v1/wallet/deposits", { method: "POST", body: { amount, method: $("deposit-method").value } });
      if (!S.deposits.find((d) => d.deposit_id === r.deposit_id)) S.deposits.push({ deposit_id: r.deposit_id, amount, status: "requested" });
      renderDeposits(); toast("Deposit requested; it is credited once the payment confirms");
      $("deposit-amount").value = "";
    } catch (e) { toast(`Deposit refused: ${errText(e)}`); }
  });
  $("withdraw-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const amount = toCents($("withdraw-amount").value);
    try {
      const r = await api("/v1/wallet/withdrawals", { method: "POST", body: { amount, rail: $("withdraw-rail").value } });
      setBalance(r.balance); toast("Withdrawal requested"); $("withdraw-amount").value = "";
      refreshWithdrawals(); refreshWallet();
    } catch (e) { toast(`Withdrawal refused: ${errText(e)}`); }
  });
  $("reality-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const v = $("reality-minutes").value;
    try {
      await api("/v1/settings/reality-check", { method: "PUT", body: { minutes: v ? parseInt(v, 10) : null } });
      toast(v ? `Reality check every ${v} min` : "Reality check off"); refreshWallet();
    } catch (e) { toast(errText(e)); }
  });
  $("break-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const d = $("break-duration");
    if (!(await confirmDialog(`Take a break for ${d.selectedOptions[0].text}? You will be logged out and cannot play until it ends.`))) return;
    try { const r = await api("/v1/breaks", { method: "POST", body: { duration: d.value } });
      block("You are on a break", `Your break lasts until ${fmtTs(r.until_ts)}.`, { wallet: true });
    } catch (e) { toast(errText(e)); }
  });
  $("exclusion-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const d = $("exclusion-duration");
    if (!(await confirmDialog(`Self-exclude for ${d.selectedOptions[0].text}? This cannot be undone or lifted early.`))) return;
    try { const r = await api("/v1/self-exclusion", { method: "POST", body: { duration: d.value } });
      block("You are self-excluded", `Your self-exclusion is in force until ${fmtTs(r.until_ts)}.`, { wallet: true });
    } catch (e) { toast(errText(e)); }
  });
  $("sound").addEventListener("click", () => {
    const v = $("video"); v.muted = !v.muted; v.play().catch(() => {});
    $("sound").textContent = v.muted ? "🔇 Sound" : "🔊 Mute";
  });
  $("rc-continue").addEventListener("click", () => { send({ type: "reality_check.ack", action: "continue" }); $("reality-dialog").close(); });
  $("rc-logout").addEventListener("click", () => {
    send({ type: "reality_check.ack", action: "logout" }); $("reality-dialog").close();
    block("Logged out", "You chose to stop after the reality check. Take care.");
  });
}

window.__casinoHandle = handle;  // tests inject server messages (e.g. a reality check) through this
boot();
