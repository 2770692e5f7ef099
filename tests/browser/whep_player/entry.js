// The npm package as published, exposed to the test page (bundled by esbuild, not modified).
import { WebRTCPlayer } from "@eyevinn/webrtc-player";

window.WebRTCPlayer = WebRTCPlayer;
