// Provably fair rounds, re-implemented in the browser with WebCrypto (CONTRACT section 3).
// Must agree byte for byte with contract/fairness.py; tests/browser/test_fairness_js.py checks it.

const enc = new TextEncoder();
const RANKS = "A23456789TJQK";
const SUITS = "SHDC";
const SHOE_SIZE = 416;
const RED = new Set([1, 3, 5, 7, 9, 12, 14, 16, 18, 19, 21, 23, 25, 27, 30, 32, 34, 36]);
const TWO32 = 4294967296;

export function available() {
  return typeof crypto !== "undefined" && !!crypto.subtle;
}

export function hexToBytes(hex) {
  if (typeof hex !== "string" || hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) {
    throw new Error("not hex");
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
  return out;
}

export function bytesToHex(bytes) {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

export async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

export async function sha256Hex(text) {
  return bytesToHex(await sha256(enc.encode(text)));
}

/** Hashing server_seed n times gives the chain's commitment (seed_0). */
export async function seedMatchesCommitment(serverSeedHex, n, commitmentHex) {
  let s;
  try { s = hexToBytes(serverSeedHex); } catch { return false; }
  if (s.length !== 32 || !Number.isInteger(n) || n < 1) return false;
  for (let i = 0; i < n; i++) s = await sha256(s);
  return bytesToHex(s) === commitmentHex;
}

/** SHA-256 over `${bet_id}:${player_seed}\n` for each accepted bet, in journal order. */
export async function clientSeed(bets) {
  let text = "";
  for (const b of bets) text += `${b.bet_id}:${b.player_seed ?? ""}\n`;
  return sha256Hex(text);
}

/** Big-endian u32 values of HMAC-SHA256(server_seed, `${client_seed}:${n}:${i}`) blocks. */
export class ByteStream {
  constructor(key, clientSeedHex, n) {
    this.key = key;
    this.prefix = `${clientSeedHex}:${n}:`;
    this.blocks = [];       // promises of Uint8Array(32), fetched ahead in batches
    this.pos = 0;           // index of the next u32 in the stream
  }

  static async create(serverSeedHex, clientSeedHex, n) {
    const raw = hexToBytes(serverSeedHex);
    const key = await crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    return new ByteStream(key, clientSeedHex, n);
  }

  _block(i) {
    while (this.blocks.length <= i) {
      const k = this.blocks.length;
      this.blocks.push(crypto.subtle.sign("HMAC", this.key, enc.encode(this.prefix + k)).then((b) => new Uint8Array(b)));
    }
    return this.blocks[i];
  }

  async next() {
    const bi = Math.floor(this.pos / 8);
    const off = (this.pos % 8) * 4;
    // Ask for a few blocks ahead so that the HMACs run while earlier values are consumed.
    this._block(bi + 8);
    const b = await this.blocks[bi];
    this.pos += 1;
    return ((b[off] << 24) >>> 0) + (b[off + 1] << 16) + (b[off + 2] << 8) + b[off + 3];
  }
}

/** Uniform integer in [0, m) by rejection sampling (no modulo bias). */
export async function uniform(stream, m) {
  if (!Number.isInteger(m) || m < 1) throw new Error("m must be positive");
  const limit = TWO32 - (TWO32 % m);
  for (;;) {
    const u = await stream.next();
    if (u < limit) return u % m;
  }
}

export function cardCode(c) {
  return RANKS[c % 13] + SUITS[Math.floor(c / 13) % 4];
}

export function cardValue(code) {
  const r = code[0];
  if (r === "A") return 1;
  if ("TJQK".includes(r)) return 0;
  return parseInt(r, 10);
}

export async function shuffledShoe(stream) {
  const shoe = Array.from({ length: SHOE_SIZE }, (_, i) => i);
  for (let i = SHOE_SIZE - 1; i > 0; i--) {
    const j = await uniform(stream, i + 1);
    const t = shoe[i]; shoe[i] = shoe[j]; shoe[j] = t;
  }
  return shoe;
}

export function bankerDraws(bankerTotal, playerThird) {
  if (playerThird === null) return bankerTotal <= 5;
  if (bankerTotal <= 2) return true;
  if (bankerTotal === 3) return playerThird !== 8;
  if (bankerTotal === 4) return playerThird >= 2 && playerThird <= 7;
  if (bankerTotal === 5) return playerThird >= 4 && playerThird <= 7;
  if (bankerTotal === 6) return playerThird === 6 || playerThird === 7;
  return false;
}

export function handTotal(hand) {
  return hand.reduce((s, c) => s + cardValue(c), 0) % 10;
}

export function dealBaccarat(shoe) {
  let k = 0;
  const next = () => cardCode(shoe[k++]);
  const player = [next()];
  const banker = [next()];
  player.push(next());
  banker.push(next());
  let pt = handTotal(player), bt = handTotal(banker);
  if (pt < 8 && bt < 8) {
    let third = null;
    if (pt <= 5) {
      player.push(next());
      third = cardValue(player[player.length - 1]);
    }
    if (bankerDraws(bt, third)) banker.push(next());
  }
  pt = handTotal(player); bt = handTotal(banker);
  const winner = pt > bt ? "player" : bt > pt ? "banker" : "tie";
  return { player, banker, winner };
}

export async function outcome(game, serverSeedHex, clientSeedHex, n) {
  const stream = await ByteStream.create(serverSeedHex, clientSeedHex, n);
  if (game === "roulette") return { number: await uniform(stream, 37) };
  if (game === "baccarat") return dealBaccarat(await shuffledShoe(stream));
  throw new Error(`unknown game ${game}`);
}

function rouletteMultiplier(spot, number) {
  if (spot.startsWith("straight:")) return parseInt(spot.slice(9), 10) === number ? 36 : 0;
  if (number === 0) return 0;
  if (spot.startsWith("dozen:")) {
    const d = parseInt(spot.slice(6), 10);
    return 12 * (d - 1) < number && number <= 12 * d ? 3 : 0;
  }
  if (spot.startsWith("column:")) {
    const c = parseInt(spot.slice(7), 10);
    return (number - 1) % 3 === c - 1 ? 3 : 0;
  }
  const won = {
    red: RED.has(number), black: !RED.has(number), odd: number % 2 === 1, even: number % 2 === 0,
    low: number >= 1 && number <= 18, high: number >= 19 && number <= 36,
  }[spot];
  if (won === undefined) throw new Error(`unknown spot ${spot}`);
  return won ? 2 : 0;
}

/** Everything credited at settlement for one bet, stake included (integers; BigInt inside). */
export function payout(game, spot, stake, result) {
  const s = BigInt(stake);
  let p;
  if (game === "roulette") {
    p = s * BigInt(rouletteMultiplier(spot, result.number));
  } else if (game === "baccarat") {
    const w = result.winner;
    if (spot === "tie") p = w === "tie" ? s * 9n : 0n;
    else if (w === "tie") p = s;
    else if (spot !== w) p = 0n;
    else p = spot === "player" ? s * 2n : s + (s * 95n) / 100n;
  } else {
    throw new Error(`unknown game ${game}`);
  }
  return Number(p);
}

/** Canonical JSON (sorted keys, no spaces), as in CONTRACT section 2, for comparisons. */
export function canonical(v) {
  if (Array.isArray(v)) return "[" + v.map(canonical).join(",") + "]";
  if (v && typeof v === "object") {
    return "{" + Object.keys(v).sort().map((k) => JSON.stringify(k) + ":" + canonical(v[k])).join(",") + "}";
  }
  return JSON.stringify(v);
}

/**
 * Verify a settled round from its proof (GET /v1/tables/{id}/rounds/{chain}/{n}).
 * Returns {ok, steps: [{name, ok, detail}], outcome}.
 */
export async function verifyRound(proof, expectedCommitment) {
  const steps = [];
  const add = (name, ok, detail) => steps.push({ name, ok: !!ok, detail });
  if (!available()) {
    add("webcrypto", false, "WebCrypto is not available (the page needs a secure context: https or localhost)");
    return { ok: false, steps };
  }
  if (proof.status !== "settled") {
    add("settled", false, `round is ${proof.status}`);
    return { ok: false, steps };
  }
  if (expectedCommitment !== undefined && expectedCommitment !== null) {
    add("commitment", proof.commitment === expectedCommitment,
      "the commitment shown before the round equals the chain's journaled commitment");
  }
  const chainOk = await seedMatchesCommitment(proof.server_seed, proof.n, proof.commitment);
  add("chain", chainOk, `SHA-256 applied ${proof.n} time(s) to the server seed gives the commitment`);
  let cs = proof.client_seed;
  if (Array.isArray(proof.bets)) {
    cs = await clientSeed(proof.bets);
    add("client_seed", cs === proof.client_seed, `SHA-256 of the ${proof.bets.length} accepted bet line(s)`);
  }
  const out = await outcome(proof.game, proof.server_seed, proof.client_seed, proof.n);
  add("outcome", canonical(out) === canonical(proof.outcome),
    `HMAC-SHA256 stream, rejection sampling → ${describeOutcome(proof.game, out)}`);
  if (Array.isArray(proof.bets) && Array.isArray(proof.payouts)) {
    const byId = new Map(proof.payouts.map((p) => [p.bet_id, p.payout]));
    const bad = proof.bets.filter((b) => payout(proof.game, b.spot, b.amount, out) !== byId.get(b.bet_id));
    add("payouts", bad.length === 0 && byId.size === proof.bets.length,
      bad.length ? `${bad.length} payout(s) differ` : `${proof.bets.length} payout(s) recomputed`);
  }
  return { ok: steps.every((s) => s.ok), steps, outcome: out };
}

export function describeOutcome(game, out) {
  if (!out) return "";
  if (game === "roulette") return `number ${out.number}`;
  if (game === "baccarat") {
    return `player ${out.player.join(" ")} (${handTotal(out.player)}) · banker ${out.banker.join(" ")} ` +
      `(${handTotal(out.banker)}) · ${out.winner}`;
  }
  return canonical(out);
}

export function isRed(number) { return RED.has(number); }
