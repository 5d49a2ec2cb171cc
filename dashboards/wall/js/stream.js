// The one live link: WebSocket /api/v1/stream?token=… with capped exponential backoff and jitter.
// Close code 4401 (token missing, invalid or revoked) ends it: the stored token is dropped and the
// page asks for a login instead of reconnecting with a token that will never work again.
import { getToken, setToken } from "./api.js";

export const BACKOFF_MIN_MS = 500;
export const BACKOFF_MAX_MS = 15000;
const UNAUTHORIZED = 4401; // the hub closes the stream with this code for a missing or revoked token

export class LiveStream {
  constructor({ token, onEvent, onState }) {
    this.token = token;
    this.onEvent = onEvent;
    this.onState = onState; // ("connecting"|"open"|"lost", retryInMs)
    this.attempt = 0;
    this.ws = null;
    this.timer = null;
    this.closed = false;
  }

  start() { this.closed = false; this.connect(); }

  stop() {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close();
  }

  connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const url = `${proto}//${location.host}/api/v1/stream?token=${encodeURIComponent(this.token)}`;
    this.onState("connecting", 0);
    let ws;
    try { ws = new WebSocket(url); } catch { this.retry(); return; }
    this.ws = ws;
    ws.onopen = () => { this.attempt = 0; this.onState("open", 0); };
    ws.onmessage = (msg) => {
      let ev;
      try { ev = JSON.parse(msg.data); } catch { return; }
      if (ev && typeof ev.type === "string") this.onEvent(ev);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (ev.code === UNAUTHORIZED) { this.unauthorized(); return; }
      if (!this.closed) this.retry();
    };
    ws.onerror = () => { /* onclose follows */ };
  }

  unauthorized() {
    this.closed = true;
    clearTimeout(this.timer);
    if (getToken() === this.token) setToken(""); // unless someone logged in with another meanwhile
    this.onState("unauthorized", 0);
  }

  retry() {
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.attempt);
    const delay = Math.round(base * (0.75 + Math.random() * 0.5));
    this.attempt += 1;
    this.onState("lost", delay);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
  }
}
