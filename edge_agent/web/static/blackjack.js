// Blackjack for any number of players (CONTRACT section 3, the Blackjack paragraph): the rules,
// mirrored from contract/blackjack.py (tests/browser/test_fairness_js.py checks them against
// Python), the in-browser round verification, and the table panel of the player client.

import * as F from "./fairness.js";

export const ACTIONS = ["hit", "stand", "double", "split"];

// --------------------------------------------------------------------------------- the rules

export function cardValue(code) {
  const r = code[0];
  if (r === "A") return 1;
  if ("TJQK".includes(r)) return 10;
  return parseInt(r, 10);
}

/** [total, soft]: the highest total <= 21 counting an ace as 11 where possible, else the lowest. */
export function total(cards) {
  let hard = 0, ace = false;
  for (const c of cards) { const v = cardValue(c); hard += v; ace = ace || v === 1; }
  return ace && hard + 10 <= 21 ? [hard + 10, true] : [hard, false];
}

export function dealerHand(shoe, next) {
  const hand = [shoe[1]];
  let i = next;
  while (hand.length < 2 || total(hand)[0] < 17) hand.push(shoe[i++]);
  return hand;
}

export class Refused extends Error {
  constructor(code, message) { super(message); this.code = code; }
}

function newHand(cards, stake, extra = {}) {
  return { cards, stake, split_hand: false, split_aces: false, doubled: false, done: false, ...extra };
}
function take(h, card) {
  h.cards.push(card);
  if (total(h.cards)[0] >= 21 || (h.split_aces && h.cards.length >= 2)) h.done = true;
}

/** The round's play for every bet at once: the same step machine as contract/blackjack.py. */
export class Play {
  constructor(shoe, bets) {
    this.shoe = shoe; this.next = 3; this.step = 1; this.decisions = new Map();
    this.playersDone = false; this.stepsTaken = 0; this.bets = new Map();
    const first = [shoe[0], shoe[2]];
    const bj = total(first)[0] === 21;
    for (const [id, amount] of bets) {
      this.bets.set(id, { bet_id: id, main: amount, blackjack: bj, split: false,
        hands: [newHand(first.slice(), amount, { done: bj })] });
    }
  }
  static current(b) { return b.hands.find((h) => !h.done) || null; }
  static canSplit(b, h) {
    return !b.split && h === b.hands[0] && h.cards.length === 2 && cardValue(h.cards[0]) === cardValue(h.cards[1]);
  }
  allowed(id) {
    const b = this.bets.get(id);
    if (!b || this.playersDone || this.decisions.has(id)) return [];
    const h = Play.current(b);
    if (!h || h.cards.length < 2) return [];
    const out = ["hit", "stand"];
    if (h.cards.length === 2 && !h.split_aces) out.push("double");
    if (Play.canSplit(b, h)) out.push("split");
    return out;
  }
  check(id, action) {
    const b = this.bets.get(id);
    if (!b) throw new Refused("no_bet_in_round", "no such bet");
    if (!ACTIONS.includes(action)) throw new Refused("unknown_action", "unknown action");
    if (this.playersDone) throw new Refused("decisions_closed", "the players' phase is over");
    const h = Play.current(b);
    if (!h) throw new Refused("hand_finished", "every hand is finished");
    if (h.cards.length < 2) throw new Refused("hand_takes_card", "the split hand takes the card");
    if (this.decisions.has(id)) throw new Refused("already_decided", "already decided in this step");
    if (action === "double") {
      if (h.cards.length !== 2 || h.split_aces) throw new Refused("double_not_allowed", "double only on two cards");
      return h.stake;
    }
    if (action === "split") {
      if (b.split) throw new Refused("already_split", "one split per round");
      if (!Play.canSplit(b, h)) throw new Refused("split_not_allowed", "split only two cards of equal value");
      return b.hands[0].stake;
    }
    return 0;
  }
  decide(id, action) { const a = this.check(id, action); this.decisions.set(id, action); return a; }
  runStep() {
    if (this.playersDone) throw new Error("the players' phase is over");
    const card = this.shoe[this.next];
    const takers = [];
    for (const b of this.bets.values()) {
      const h = Play.current(b);
      if (!h) continue;
      if (h.cards.length < 2) { take(h, card); takers.push(b.bet_id); continue; }
      const action = this.decisions.get(b.bet_id) || "stand";
      if (action === "hit") { take(h, card); takers.push(b.bet_id); }
      else if (action === "double") { h.stake *= 2; h.doubled = true; take(h, card); h.done = true; takers.push(b.bet_id); }
      else if (action === "split") {
        const aces = h.cards[0][0] === "A";
        const second = h.cards.pop();
        b.split = true;
        b.hands.push(newHand([second], h.stake, { split_hand: true, split_aces: aces }));
        h.split_aces = aces; take(h, card); takers.push(b.bet_id);
      } else {
        h.done = true;
        const nxt = Play.current(b);
        if (nxt && nxt.split_hand && nxt.cards.length === 1) { take(nxt, card); takers.push(b.bet_id); }
      }
    }
    this.decisions = new Map();
    const step = this.step;
    if (takers.length) { this.next += 1; this.stepsTaken += 1; this.step += 1; return { step, card, takers }; }
    this.playersDone = true;
    return { step, card: null, takers };
  }
  dealer() { return dealerHand(this.shoe, this.next); }
  outcome() { return { dealer: this.dealer(), steps: this.stepsTaken }; }
  payouts() {
    const d = this.dealer();
    return new Map([...this.bets.values()].map((b) => [b.bet_id, betPayout(b, d)]));
  }
}

export function staked(b) { return b.hands.reduce((s, h) => s + h.stake, 0); }

/** Everything credited at settlement for one bet, every stake included (BigInt inside). */
export function betPayout(b, dealer) {
  if (total(dealer.slice(0, 2))[0] === 21) return staked(b) - b.main + (b.blackjack ? b.main : 0);
  const d = total(dealer)[0];
  let out = 0n;
  b.hands.forEach((h, i) => {
    const st = BigInt(h.stake), t = total(h.cards)[0];
    if (i === 0 && b.blackjack) out += st + (st * 3n) / 2n;
    else if (t > 21) return;
    else if (d > 21 || t > d) out += 2n * st;
    else if (t === d) out += st;
  });
  return Number(out);
}

export async function shoe(serverSeedHex, clientSeedHex, n) {
  const stream = await F.ByteStream.create(serverSeedHex, clientSeedHex, n);
  return (await F.shuffledShoe(stream)).map(F.cardCode);
}

/** Replay a round's journal entries on a Play; the first entry the rules reject, or null. */
export function replay(play, entries) {
  let dealt = false;
  for (const e of entries) {
    const d = e.data;
    if (e.kind === "blackjack.dealt") {
      if (dealt) return { seq: e.seq, reason: "dealt twice" };
      dealt = true;
      if (d.hand[0] !== play.shoe[0] || d.hand[1] !== play.shoe[2] || d.dealer_up !== play.shoe[1]) {
        return { seq: e.seq, reason: "dealt cards are not S[0], S[2] and dealer S[1]" };
      }
      continue;
    }
    if (e.kind !== "blackjack.decision" && e.kind !== "blackjack.card") continue;
    if (!dealt) return { seq: e.seq, reason: `${e.kind} before the deal` };
    if (d.step !== play.step || play.playersDone) return { seq: e.seq, reason: `${e.kind} for step ${d.step} in step ${play.step}` };
    if (e.kind === "blackjack.decision") {
      let added;
      try { added = play.decide(d.bet_id, d.action); } catch (err) { return { seq: e.seq, reason: `refused decision (${err.code})` }; }
      if (d.amount !== added) return { seq: e.seq, reason: "wrong added stake" };
    } else {
      const r = play.runStep();
      if (r.card === null || r.card !== d.card) return { seq: e.seq, reason: `step ${d.step} card is not S[${play.next - 1}]` };
    }
  }
  if (!dealt) return { seq: null, reason: "no blackjack.dealt" };
  if (play.runStep().card !== null) return { seq: null, reason: "settled while hands were still taking cards" };
  return null;
}

/**
 * Verify a settled blackjack round from its proof (GET /v1/tables/{id}/rounds/{chain}/{n}):
 * commitment, seed chain, client seed, then the shoe, the dealt and step cards shown live, the
 * player's own decisions (`mine`: [{step, action}] as acknowledged to this page), every hand, the
 * dealer's hand and every payout. Returns {ok, steps, outcome}.
 */
export async function verifyRound(proof, expectedCommitment, myBetId = null, mine = null) {
  const steps = [];
  const add = (name, ok, detail) => steps.push({ name, ok: !!ok, detail });
  if (!F.available()) {
    add("webcrypto", false, "WebCrypto is not available (the page needs a secure context)");
    return { ok: false, steps };
  }
  if (proof.status !== "settled") { add("settled", false, `round is ${proof.status}`); return { ok: false, steps }; }
  if (expectedCommitment !== undefined && expectedCommitment !== null) {
    add("commitment", proof.commitment === expectedCommitment, "the commitment shown before the round is the chain's");
  }
  add("chain", await F.seedMatchesCommitment(proof.server_seed, proof.n, proof.commitment),
    `SHA-256 applied ${proof.n} time(s) to the server seed gives the commitment`);
  const cs = await F.clientSeed(proof.bets);
  add("client_seed", cs === proof.client_seed, `SHA-256 of the ${proof.bets.length} accepted bet line(s)`);
  const cards = await shoe(proof.server_seed, proof.client_seed, proof.n);
  const entries = (proof.entries || []).filter((e) => e.kind.startsWith("blackjack."));
  if (myBetId && mine) {
    const journaled = entries.filter((e) => e.kind === "blackjack.decision" && e.data.bet_id === myBetId)
      .map((e) => `${e.data.step}:${e.data.action}`);
    const acked = mine.map((d) => `${d.step}:${d.action}`);
    add("my_decisions", F.canonical(journaled) === F.canonical(acked),
      `your ${acked.length} decision(s) are the journaled ones`);
  }
  const play = new Play(cards, proof.bets.map((b) => [b.bet_id, b.amount]));
  const bad = replay(play, entries);
  add("hands", bad === null, bad ? `entry ${bad.seq ?? "settled"}: ${bad.reason}`
    : `dealt ${cards[0]} ${cards[2]} / dealer ${cards[1]} and ${play.stepsTaken} step card(s) follow from the shoe`);
  const out = play.outcome();
  add("outcome", bad === null && F.canonical(out) === F.canonical(proof.outcome), `dealer ${out.dealer.join(" ")} (${total(out.dealer)[0]})`);
  const want = play.payouts();
  const got = new Map((proof.payouts || []).map((p) => [p.bet_id, p.payout]));
  const wrong = [...want].filter(([id, p]) => got.get(id) !== p);
  add("payouts", bad === null && wrong.length === 0 && got.size === want.size,
    wrong.length ? `${wrong.length} payout(s) differ` : `${want.size} payout(s) recomputed` +
      (myBetId && want.has(myBetId) ? ` (yours: ${want.get(myBetId)})` : ""));
  return { ok: steps.every((s) => s.ok), steps, outcome: out };
}

export function describe(out) {
  if (!out || !out.dealer) return "";
  const [t] = total(out.dealer);
  return `dealer ${out.dealer.join(" ")} (${t > 21 ? "bust" : t}) · ${out.steps} step card(s)`;
}

// --------------------------------------------------------------------------------- the panel

const NAMES = { hit: "Hit", stand: "Stand", double: "Double", split: "Split" };
export const ERRORS = {
  hand_finished: "That hand is finished", hand_takes_card: "Your split hand takes this card",
  double_not_allowed: "Double only on your first two cards", split_not_allowed: "Only a pair can be split",
  already_split: "One split per round", already_decided: "You have already decided this step",
  decisions_closed: "Too late: the step has closed", no_bet_in_round: "You have no hand in this round",
  unknown_action: "Unknown decision", duplicate_bet: "One hand per player per round",
};

/** The blackjack table panel. `ctx`: {send, placeBet, money, serverNow, toast, log}. */
export class Panel {
  constructor(ctx) { this.ctx = ctx; this.root = null; this.reset(); }

  reset() {
    this.r = null;           // {table_id, chain_id, n}
    this.play = null;        // my own Play (my bet only) once dealt
    this.dealt = null; this.cards = []; this.dealer = null; this.stepCloses = 0; this.step = 0;
    this.myBet = null; this.mine = []; this.pendingReq = null; this.result = null; this.players = null;
  }

  build(board) {
    const E = (tag, attrs, ...kids) => {
      const e = document.createElement(tag);
      for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
      e.append(...kids); return e;
    };
    this.root = E("div", { class: "bj", id: "bj-panel" },
      E("div", { class: "bj-row" },
        E("div", { class: "bj-dealer" }, E("span", { class: "label" }, "Dealer"), E("div", { class: "bj-cards", id: "bj-dealer" })),
        E("div", { class: "bj-players", id: "bj-players" })),
      E("div", { class: "bj-shared" }, E("span", { class: "label" }, "Shared hand"), E("div", { class: "bj-cards", id: "bj-shared" })),
      E("div", { class: "bj-mine", id: "bj-hands" }),
      E("div", { class: "bj-step" }, E("span", { id: "bj-step-text" }, ""), E("div", { class: "countdown" }, E("div", { id: "bj-step-fill" }))),
      E("div", { class: "bj-actions", id: "bj-actions" }),
      E("div", { class: "bj-result", id: "bj-result", "aria-live": "polite" }));
    const bet = E("button", { class: "spot bj-bet", "data-spot": "hand", "aria-label": "bet on hand" }, "Deal me in");
    bet.addEventListener("click", () => this.ctx.placeBet("hand"));
    this.root.prepend(bet);
    board.append(this.root);
    this.render();
  }

  /** Joined (or reloaded) mid-deal: rebuild the table and my hand from the round's journal so far. */
  async resume(tableId, r) {
    if (!r || (r.status !== "closed" && r.status !== "open") || this.dealt || !this.ctx.api) return;
    let proof;
    try { proof = await this.ctx.api(`/v1/tables/${encodeURIComponent(tableId)}/rounds/${r.chain_id}/${r.n}`); }
    catch { return; }
    const es = proof.entries || [];
    const me = this.ctx.player && this.ctx.player();
    const bet = es.find((e) => e.kind === "bet.placed" && e.data.player === me);
    this.r = this.r || { table_id: tableId, chain_id: r.chain_id, n: r.n };
    if (bet && !this.myBet) this.myBet = { bet_id: bet.data.bet_id, amount: bet.data.amount, chain_id: r.chain_id, n: r.n };
    const dealt = es.find((e) => e.kind === "blackjack.dealt");
    if (!dealt || this.dealt) { this.render(); return; }  // the deal is still to come: its message will do
    this.dealt = { hand: dealt.data.hand, dealer_up: dealt.data.dealer_up };
    this.players = proof.bets.length;
    if (bet) {
      this.play = new Play([dealt.data.hand[0], dealt.data.dealer_up, dealt.data.hand[1]], [[bet.data.bet_id, bet.data.amount]]);
    }
    for (const e of es) {
      if (e.kind === "blackjack.decision" && bet && e.data.bet_id === bet.data.bet_id) {
        this.mine.push({ step: e.data.step, action: e.data.action });
        try { this.play.decide(e.data.bet_id, e.data.action); } catch { /* mirrored */ }
      } else if (e.kind === "blackjack.card") this.takeCard(e.data.card, e.data.step);
    }
    this.step = this.cards.length + 1;
    // The window's end is not in the journal: offer the buttons briefly; the edge refuses late ones.
    this.stepCloses = this.ctx.serverNow() + 3000;
    this.render();
  }

  takeCard(card, step) {
    if (step <= this.cards.length) return;  // already shown (from the journal or the socket)
    this.cards.push(card);
    if (this.play && !this.play.playersDone) {
      this.play.shoe[this.play.next] = card;
      this.play.runStep();
    }
  }

  onAccepted(m) {               // my bet on this table was accepted
    this.myBet = { bet_id: m.bet_id, amount: m.amount, chain_id: m.chain_id, n: m.n };
    // The page may have joined after the round opened: the receipt names the round.
    if (!this.r || this.r.n !== m.n) this.r = { table_id: m.table_id, chain_id: m.chain_id, n: m.n };
    this.render();
  }

  onMessage(m) {
    switch (m.type) {
      case "round.opened": this.reset(); this.r = { table_id: m.table_id, chain_id: m.chain_id, n: m.n }; break;
      case "blackjack.dealt": {
        this.dealt = { hand: m.hand, dealer_up: m.dealer_up };
        this.players = m.players; this.step = m.next_step || 1; this.stepCloses = m.closes_ts || 0;
        if (this.myBet && this.myBet.n === m.n) {
          // The shoe is secret until settlement: my Play knows only the cards shown so far.
          this.play = new Play([m.hand[0], m.dealer_up, m.hand[1]], [[this.myBet.bet_id, this.myBet.amount]]);
        }
        break;
      }
      case "blackjack.card": {
        if (!this.dealt) return;  // joined mid-deal: resume() reads the cards from the journal
        this.takeCard(m.card, m.step);
        this.step = m.next_step || m.step + 1; this.stepCloses = m.closes_ts || 0;
        break;
      }
      case "act.accepted": {
        this.pendingReq = null;
        this.mine.push({ step: m.step, action: m.action });
        if (this.play) { try { this.play.decide(m.bet_id, m.action); } catch { /* already mirrored */ } }
        this.ctx.log(`✓ ${NAMES[m.action]} (step ${m.step})${m.amount ? `, ${this.ctx.money(m.amount)} added` : ""}`);
        break;
      }
      case "act.refused": {
        this.pendingReq = null;
        const code = m.error && m.error.code;
        this.ctx.toast(`Decision refused: ${ERRORS[code] || (m.error && m.error.message) || code}`);
        break;
      }
      case "round.settled": {
        this.dealer = m.outcome.dealer; this.stepCloses = 0;
        if (this.play) {
          const d = this.dealer;
          this.result = { payout: betPayout(this.play.bets.get(this.myBet.bet_id), d), total: total(d)[0] };
        }
        break;
      }
      case "round.voided": this.stepCloses = 0; this.result = { voided: m.reason }; break;
      case "settlement": if (this.result) this.result.credited = m.payout; break;
      default: return;
    }
    this.render();
  }

  decide(action) {
    if (!this.myBet || !this.r) return;
    const req = `bj-${Date.now()}-${Math.random().toString(36).slice(2, 7)}`;
    this.pendingReq = req;
    if (!this.ctx.send({ type: "act", req, table_id: this.r.table_id, step: this.step, action })) {
      this.pendingReq = null;
    }
    this.render();
  }

  allowed() {
    if (!this.play || !this.myBet || this.pendingReq || this.ctx.serverNow() > this.stepCloses) return [];
    return this.play.allowed(this.myBet.bet_id);
  }

  tick() {
    if (!this.root) return;
    const left = this.stepCloses - this.ctx.serverNow();
    const fill = this.root.querySelector("#bj-step-fill");
    const text = this.root.querySelector("#bj-step-text");
    if (this.dealt && !this.dealer && left > 0) {
      text.textContent = `Step ${this.step}: decide in ${(left / 1000).toFixed(1)} s`;
      fill.style.width = `${Math.max(0, Math.min(100, left / 60))}%`;
    } else {
      text.textContent = this.dealer ? "Dealer's hand" : this.dealt ? "Dealing…" : "";
      fill.style.width = "0";
    }
    const acts = this.allowed().join(",");
    if (acts !== this.shownActions) this.renderActions();
  }

  renderActions() {
    const box = this.root.querySelector("#bj-actions"); box.innerHTML = "";
    const allowed = this.allowed();
    this.shownActions = allowed.join(",");
    for (const a of ACTIONS) {
      if (!allowed.includes(a)) continue;
      const b = document.createElement("button");
      b.className = `bj-act ${a}`; b.dataset.action = a; b.textContent = NAMES[a];
      b.addEventListener("click", () => this.decide(a));
      box.append(b);
    }
  }

  render() {
    if (!this.root) return;
    const q = (s) => this.root.querySelector(s);
    const cardsEl = (cards) => cards.map((c) => {
      const s = document.createElement("span");
      s.className = `card ${"HD".includes(c[1]) ? "red" : "black"}`;
      s.textContent = c[0].replace("T", "10") + { S: "♠", H: "♥", D: "♦", C: "♣" }[c[1]];
      return s;
    });
    q("#bj-dealer").replaceChildren(...cardsEl(this.dealer || (this.dealt ? [this.dealt.dealer_up] : [])));
    q("#bj-shared").replaceChildren(...cardsEl(this.dealt ? [...this.dealt.hand, ...this.cards] : []));
    q("#bj-players").textContent = this.players !== null ? `${this.players} player(s) at the table` : "";
    const hands = q("#bj-hands"); hands.innerHTML = "";
    const mineBet = this.play && this.myBet ? this.play.bets.get(this.myBet.bet_id) : null;
    if (mineBet) {
      mineBet.hands.forEach((h, i) => {
        const [t, soft] = total(h.cards);
        const row = document.createElement("div");
        row.className = `bj-hand${h.done ? " done" : ""}${Play.current(mineBet) === h ? " current" : ""}`;
        row.dataset.hand = String(i);
        const label = document.createElement("span");
        label.className = "bj-total";
        label.textContent = `${i ? "Split hand" : "Your hand"}: ${mineBet.blackjack && i === 0 ? "Blackjack" : t > 21 ? `${t} bust` : `${soft ? "soft " : ""}${t}`}` +
          ` · stake ${this.ctx.money(h.stake)}${h.doubled ? " (doubled)" : ""}`;
        row.append(label, ...cardsEl(h.cards));
        hands.append(row);
      });
    } else if (this.myBet) hands.textContent = `Your stake ${this.ctx.money(this.myBet.amount)} — waiting for the deal`;
    const res = q("#bj-result");
    if (!this.result) res.textContent = "";
    else if (this.result.voided) res.textContent = `Round voided (${this.result.voided}): every stake returned`;
    else {
      const p = this.result.credited ?? this.result.payout;
      res.innerHTML = "";
      const s = document.createElement("span");
      s.id = "bj-result-text"; s.className = p > 0 ? "win" : "loss";
      s.textContent = `Dealer ${this.result.total > 21 ? "busts" : this.result.total} — ${p > 0 ? `you get ${this.ctx.money(p)}` : "you lose"}`;
      res.append(s);
    }
    this.renderActions();
    this.tick();
  }
}
