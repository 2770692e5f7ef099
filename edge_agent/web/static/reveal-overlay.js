// The camera's reading of a reveal, on the picture (issue 18): the edge's vision stage reads the
// cards or the roulette number as the dealer shows them and pushes `vision.reveal` to the table's
// players, before the settlement arrives. A reveal the camera did not confirm is flagged: that
// round is voided (dealer_error) and every stake returned.
const SUITS = { S: "♠", H: "♥", D: "♦", C: "♣" };
const RED = new Set(["H", "D"]);

function face(v) {
  if (typeof v === "number") return { text: String(v), red: false };
  if (typeof v !== "string" || v.length !== 2) return { text: "?", red: false };
  return { text: (v[0] === "T" ? "10" : v[0]) + (SUITS[v[1]] || "?"), red: RED.has(v[1]) };
}

function box() {
  let el = document.getElementById("reveal-overlay");
  if (el) return el;
  const wrap = document.querySelector(".video-wrap");
  if (!wrap) return null;
  el = document.createElement("div");
  el.id = "reveal-overlay";
  el.setAttribute("role", "status");
  el.style.cssText = "position:absolute;left:8px;bottom:8px;padding:4px 8px;border-radius:6px;" +
    "background:rgba(0,0,0,.72);color:#fff;font:600 15px/1.4 system-ui,sans-serif;pointer-events:none";
  el.hidden = true;
  wrap.append(el);
  return el;
}

export function showReveal(m) {
  const el = box();
  if (!el) return;
  const current = window.__casino && window.__casino.current;
  if (current && m.table_id !== current) return;
  el.replaceChildren();
  const label = document.createElement("span");
  label.textContent = m.result === "match" ? "Camera: " : "Camera could not confirm the deal: ";
  el.append(label);
  const seen = m.seen || {};
  for (const slot of Object.keys(seen)) {
    const f = face(seen[slot]);
    const s = document.createElement("span");
    s.className = "reveal-card";
    s.dataset.slot = slot;
    s.textContent = f.text + " ";
    if (f.red) s.style.color = "#ff6b6b";
    el.append(s);
  }
  el.dataset.result = m.result;
  el.dataset.n = String(m.n);
  el.hidden = false;
}

window.addEventListener("casino:message", (ev) => {
  const m = ev.detail;
  if (!m) return;
  if (m.type === "vision.reveal") showReveal(m);
  else if (m.type === "round.opened") { const el = document.getElementById("reveal-overlay"); if (el) el.hidden = true; }
});
