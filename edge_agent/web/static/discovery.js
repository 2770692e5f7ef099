// Which edge serves this player: the control plane's discovery (edges of the player's own
// jurisdiction only, best first), then a client-side RTT probe among the candidates.
// Without a control plane URL the page uses the edge that served it (which itself refuses a
// player of another jurisdiction: never served from abroad).

export class DiscoveryError extends Error {
  constructor(code, message, jurisdiction) {
    super(message); this.code = code; this.jurisdiction = jurisdiction;
  }
}

function candidateUrl(c) {
  if (typeof c === "string") return c;
  return c.url || c.public_url || c.base_url || c.http_url || c.api_url || null;
}

async function probe(url, tries = 3, timeoutMs = 1500) {
  let best = Infinity;
  let health = null;
  for (let i = 0; i < tries; i++) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), timeoutMs);
    const t0 = performance.now();
    try {
      const res = await fetch(`${url.replace(/\/$/, "")}/healthz`, { cache: "no-store", signal: ctl.signal });
      const dt = performance.now() - t0;
      health = await res.json().catch(() => null);
      if (res.ok) best = Math.min(best, dt);
    } catch (e) {
      break;  // unreachable: no more tries
    } finally { clearTimeout(timer); }
  }
  return { rttMs: best, health };
}

export async function discoverEdge({ cp, token, self }) {
  if (!cp) return { url: self, how: "this page's edge", candidates: [] };
  let res;
  try {
    res = await fetch(`${cp.replace(/\/$/, "")}/v1/discovery`, { headers: { "Authorization": `Bearer ${token}` } });
  } catch (e) {
    throw new DiscoveryError("discovery_unreachable", `The casino's directory cannot be reached (${e.message}).`);
  }
  const body = await res.json().catch(() => null);
  if (!res.ok) {
    const err = (body && (body.error || (body.detail && body.detail.error) || body.detail)) || {};
    const code = typeof err === "object" ? err.code : undefined;
    const jur = typeof err === "object" ? (err.details && err.details.jurisdiction) || err.jurisdiction : undefined;
    throw new DiscoveryError(code || `http_${res.status}`,
      (typeof err === "object" && err.message) || `discovery failed (HTTP ${res.status})`, jur);
  }
  const list = Array.isArray(body) ? body : (body.edges || body.candidates || []);
  const jurisdiction = body && !Array.isArray(body) ? body.jurisdiction : undefined;
  const cands = list.map((c, i) => ({ ...(typeof c === "object" ? c : {}), url: candidateUrl(c), order: i }))
    .filter((c) => c.url && c.healthy !== false);
  if (!cands.length) {
    throw new DiscoveryError("no_edge_in_jurisdiction", "No edge serves your jurisdiction.", jurisdiction);
  }
  const probed = await Promise.all(cands.map(async (c) => ({ ...c, ...(await probe(c.url)) })));
  // Healthy and reachable first, then lowest measured RTT, then the control plane's order.
  const ok = probed.filter((c) => Number.isFinite(c.rttMs));
  if (!ok.length) {
    throw new DiscoveryError("no_edge_reachable", "The edges of your jurisdiction cannot be reached right now.", jurisdiction);
  }
  // Among edges within a few ms of the fastest, keep the control plane's order (least loaded).
  const fastest = Math.min(...ok.map((c) => c.rttMs));
  const near = ok.filter((c) => c.rttMs <= fastest + Math.max(10, 0.25 * fastest));
  near.sort((a, b) => a.order - b.order);
  const best = near[0];
  return { url: best.url, rttMs: best.rttMs, edge_id: best.edge_id, how: `discovered, RTT probe among ${ok.length}`,
    candidates: probed.map((c) => ({ url: c.url, edge_id: c.edge_id, rttMs: Number.isFinite(c.rttMs) ? c.rttMs : null })) };
}
