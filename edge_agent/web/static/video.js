// Live table video over WHEP (CONTRACT section 4) with stall detection and a latency figure.
//
// Latency, best source first:
//  1. "capture": the capture timestamp the studio draws in each frame (timestamp.js), read back
//     with requestVideoFrameCallback + a canvas, against this browser's clock corrected by the
//     offset to the edge's clock (WebSocket ping/pong) — glass to glass;
//  2. "stats": WebRTC getStats — network half RTT + jitter-buffer delay + decode time per frame.

import { readCaptureTs } from "./timestamp.js";

const STALL_MS = 1500;

export class LiveVideo {
  constructor(video, { token, clockOffset, onState }) {
    this.video = video;
    this.token = token;
    this.clockOffset = clockOffset || (() => 0);  // edge clock - local clock, ms
    this.onState = onState || (() => {});
    this.pc = null;
    this.resource = null;
    this.gen = 0;
    this.stats = { framesDecoded: 0, lastFrameAt: 0, latencyMs: null, source: null, rttMs: null,
      jitterMs: null, decodeMs: null, g2g: [], state: "idle", error: null };
    this.canvas = document.createElement("canvas");
    this.ctx = this.canvas.getContext("2d", { willReadFrequently: true });
    this.readIntervalMs = 95;  // how often the capture timestamp is read (0: every frame)
    this._tick = setInterval(() => this._poll(), 500);
  }

  async play(baseUrl, tableId) {
    this.target = { baseUrl, tableId };
    this.stats.lastFrameAt = 0; this.stats.lastDecodedAt = 0; this.stats.captureAt = 0;
    const gen = ++this.gen;
    await this.stop();
    this.stats.state = "connecting"; this.stats.error = null; this.stats.g2g = [];
    this._emit();
    let delay = 1000;
    while (gen === this.gen) {
      try {
        await this._connect(baseUrl, tableId, gen);
        return;
      } catch (err) {
        if (gen !== this.gen) return;
        const wait = err.retryAfterMs || delay;
        this.stats.state = "unavailable";
        this.stats.error = `${err.message || err}; retrying in ${Math.round(wait / 1000)} s`;
        this._emit();
        await new Promise((r) => setTimeout(r, wait));
        delay = Math.min(delay * 2, 10000);
      }
    }
  }

  async _connect(baseUrl, tableId, gen) {
    const pc = new RTCPeerConnection({ iceServers: [] });
    this.pc = pc;
    const vt = pc.addTransceiver("video", { direction: "recvonly" });
    // The edge forwards pre-encoded H.264 (packetization-mode 1): offer only that (plus RTX), so
    // the answer cannot pick another codec for the packets.
    try {
      const caps = RTCRtpReceiver.getCapabilities("video").codecs;
      const h264 = caps.filter((c) => c.mimeType.toLowerCase() === "video/h264" &&
        /packetization-mode=1/.test(c.sdpFmtpLine || ""));
      const rtx = caps.filter((c) => c.mimeType.toLowerCase() === "video/rtx");
      if (h264.length) vt.setCodecPreferences([...h264, ...rtx]);
    } catch (e) { /* keep the browser's default order */ }
    pc.addTransceiver("audio", { direction: "recvonly" });
    pc.ontrack = (ev) => {
      if (gen !== this.gen) return;
      const stream = ev.streams && ev.streams[0] ? ev.streams[0] : new MediaStream([ev.track]);
      this.video.srcObject = stream;
      this.video.play().catch(() => {});
      this._watchFrames(gen);
    };
    pc.onconnectionstatechange = () => {
      if (gen !== this.gen) return;
      if (pc.connectionState === "failed" || pc.connectionState === "closed") {
        this.stats.state = "failed"; this._emit();
        this.play(baseUrl, tableId);  // reconnect (new generation)
      }
    };
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    await waitIce(pc, 1000);
    const url = `${baseUrl}/whep/${encodeURIComponent(tableId)}`;
    // 307 (load balancing to a sibling edge) is followed by fetch with the same method and body.
    const post = (u) => fetch(u, {
      method: "POST", body: pc.localDescription.sdp, redirect: "follow",
      headers: { "Content-Type": "application/sdp", "Authorization": `Bearer ${this.token}` },
    });
    let res = await post(url);
    // Browsers drop the Authorization header when following a redirect to another origin (a
    // sibling edge): ask the edge we were sent to again, directly, with the token.
    if (res.status === 401 && res.redirected) res = await post(res.url);
    if (res.status !== 201 && res.status !== 200) {
      pc.close();
      const err = new Error(whepError(res.status, await res.text().catch(() => "")));
      const ra = parseInt(res.headers.get("Retry-After") || "", 10);
      if (Number.isFinite(ra)) err.retryAfterMs = Math.max(500, ra * 1000);
      throw err;
    }
    const loc = res.headers.get("Location");
    this.resource = loc ? new URL(loc, res.url).toString() : null;
    const answer = await res.text();
    await pc.setRemoteDescription({ type: "answer", sdp: answer });
    this.stats.state = "negotiated";
    this._emit();
  }

  async stop() {
    const pc = this.pc, res = this.resource;
    this.pc = null; this.resource = null;
    if (pc) pc.close();
    if (res) {
      fetch(res, { method: "DELETE", headers: { "Authorization": `Bearer ${this.token}` } }).catch(() => {});
    }
    this.video.srcObject = null;
  }

  _watchFrames(gen) {
    const v = this.video;
    if (!v.requestVideoFrameCallback) return;
    const onFrame = (now, meta) => {
      if (gen !== this.gen) return;
      this.stats.lastFrameAt = performance.now();
      // The same video frame can be reported again (repaint): count each frame once.
      const fresh = meta.presentedFrames !== this._lastPresented;
      this._lastPresented = meta.presentedFrames;
      // Read the capture timestamp drawn in the picture, at most ~10 times a second.
      if (fresh && (!this._lastRead || now - this._lastRead >= this.readIntervalMs)) {
        this._lastRead = now;
        try {
          const ts = readCaptureTs(v, this.canvas, this.ctx);
          if (ts !== null) {
            // meta.expectedDisplayTime is when this frame reaches the screen (performance clock).
            const shownAt = performance.timeOrigin + (meta.expectedDisplayTime || now);
            const g2g = shownAt + this.clockOffset() - ts;
            if (g2g > -1000 && g2g < 60000) {
              this.stats.g2g.push(g2g);
              if (this.stats.g2g.length > 5000) this.stats.g2g.shift();
              this.stats.captureLatencyMs = g2g;
              this.stats.captureAt = performance.now();
            }
          }
        } catch (e) { /* a frame we cannot read (tainted or not yet sized) */ }
      }
      v.requestVideoFrameCallback(onFrame);
    };
    v.requestVideoFrameCallback(onFrame);
  }

  async _poll() {
    const pc = this.pc;
    if (pc) {
      try {
        const report = await pc.getStats();
        report.forEach((s) => {
          if (s.type === "inbound-rtp" && s.kind === "video") {
            if (s.framesDecoded > this.stats.framesDecoded) this.stats.lastDecodedAt = performance.now();
            this.stats.framesDecoded = s.framesDecoded || 0;
            this.stats.framesDropped = s.framesDropped || 0;
            this.stats.frameWidth = s.frameWidth; this.stats.frameHeight = s.frameHeight;
            if (s.jitterBufferEmittedCount) this.stats.jitterMs = 1000 * s.jitterBufferDelay / s.jitterBufferEmittedCount;
            if (s.framesDecoded) this.stats.decodeMs = 1000 * (s.totalDecodeTime || 0) / s.framesDecoded;
          }
          if (s.type === "candidate-pair" && s.nominated && s.currentRoundTripTime !== undefined) {
            this.stats.rttMs = 1000 * s.currentRoundTripTime;
          }
        });
      } catch (e) { /* closed meanwhile */ }
    }
    const now = performance.now();
    if (this.stats.captureAt && now - this.stats.captureAt < 3000) {
      this.stats.latencyMs = this.stats.captureLatencyMs; this.stats.source = "capture";
    } else if (this.stats.jitterMs !== null && this.stats.framesDecoded > 0) {
      this.stats.latencyMs = (this.stats.rttMs || 0) / 2 + this.stats.jitterMs + (this.stats.decodeMs || 0);
      this.stats.source = "stats";
    } else {
      this.stats.latencyMs = null; this.stats.source = null;
    }
    const last = Math.max(this.stats.lastFrameAt || 0, this.stats.lastDecodedAt || 0);
    const playing = last > 0 && now - last < STALL_MS;
    if (playing) this.stats.state = "playing";
    else if (this.stats.state === "playing") { this.stats.state = "stalled"; this.stats.stalledAt = now; }
    // A stall that lasts: negotiate a new session (the edge may have restarted the feed).
    if (this.stats.state === "stalled" && now - this.stats.stalledAt > 6000 && this.target) {
      this.play(this.target.baseUrl, this.target.tableId);
    }
    this._emit();
  }

  _emit() { this.onState(this.stats); }
}

function whepError(status, body) {
  let msg = "";
  try { msg = JSON.parse(body).error.message; } catch { msg = body.slice(0, 120); }
  if (status === 503) return `the edge is at its viewer limit${msg ? ` (${msg})` : ""}`;
  if (status === 409) return "the table's video is not live";
  if (status === 404) return "no video for this table";
  return `video refused (HTTP ${status}${msg ? `: ${msg}` : ""})`;
}

function waitIce(pc, ms) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") { clearTimeout(t); resolve(); }
    });
  });
}

export function latencyClass(ms) {
  if (ms === null || ms === undefined) return "unknown";
  if (ms < 300) return "good";
  if (ms <= 700) return "warn";
  return "bad";
}
