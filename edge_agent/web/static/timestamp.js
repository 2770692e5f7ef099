// Reads the capture timestamp the studio draws into each frame (edge_agent/media/timestamp.py):
// a band of height max(2, H/24) at the top left, blocks of width W/64: marker 1,0, then 40 bits
// of the Unix ms capture time (MSB first), then a 4-bit checksum (sum of the ten data nibbles
// mod 16). Read back at any scale: each block is sampled in its central half.

const DATA_BITS = 40;
const BLOCKS = 2 + DATA_BITS + 4;
const SPAN = 2 ** DATA_BITS;

/** The 40-bit value in an RGBA band (ImageData of the top band), or null. */
export function decodeBand(data, width, bandHeight) {
  const bw = width / 64, bh = bandHeight;
  const bits = [];
  for (let i = 0; i < BLOCKS; i++) {
    let x0 = Math.floor(i * bw + bw / 4), x1 = Math.floor((i + 1) * bw - bw / 4);
    let y0 = Math.floor(bh / 4), y1 = bh - Math.floor(bh / 4);
    x1 = Math.max(x1, x0 + 1); y1 = Math.max(y1, y0 + 1);
    let sum = 0, n = 0;
    for (let y = y0; y < y1; y++) {
      for (let x = x0; x < x1; x++) {
        const o = (y * width + x) * 4;
        sum += 0.299 * data[o] + 0.587 * data[o + 1] + 0.114 * data[o + 2];
        n++;
      }
    }
    bits.push(sum / n > 127 ? 1 : 0);
  }
  if (bits[0] !== 1 || bits[1] !== 0) return null;
  let v = 0;
  for (let i = 2; i < 2 + DATA_BITS; i++) v = v * 2 + bits[i];
  let check = 0;
  for (let i = 2 + DATA_BITS; i < BLOCKS; i++) check = check * 2 + bits[i];
  let nib = 0;
  for (let i = 0; i < DATA_BITS / 4; i++) nib += Math.floor(v / 16 ** i) % 16;
  if ((nib % 16) !== check) return null;
  return v;
}

/** Unix ms from the 40 low bits, the high bits taken from `nowMs`. */
export function unwrap(v, nowMs) {
  let ts = Math.floor(nowMs / SPAN) * SPAN + v;
  if (ts > nowMs + SPAN / 2) ts -= SPAN;
  return ts;
}

/** Capture time (Unix ms) drawn in the video's current frame, or null. */
export function readCaptureTs(video, canvas, ctx, nowMs = Date.now()) {
  const w = video.videoWidth, h = video.videoHeight;
  if (!w || !h) return null;
  const bh = Math.max(2, Math.floor(h / 24));
  if (canvas.width !== w || canvas.height !== bh) { canvas.width = w; canvas.height = bh; }
  ctx.drawImage(video, 0, 0, w, bh, 0, 0, w, bh);
  const img = ctx.getImageData(0, 0, w, bh);
  const v = decodeBand(img.data, w, bh);
  return v === null ? null : unwrap(v, nowMs);
}
