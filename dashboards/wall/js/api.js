// REST client: one token, one place that knows about auth. 401 asks for a login.
const KIOSK_KEY = "vh.kiosk-token";
const TOKEN_KEY = "vh.token";

let authListener = () => {};

/** Kiosk mode: ?token= in the URL is kept for this tab only and removed from the address bar. */
export function initToken() {
  const params = new URLSearchParams(location.search);
  const fromUrl = params.get("token");
  if (fromUrl) {
    sessionStorage.setItem(KIOSK_KEY, fromUrl);
    params.delete("token");
    const rest = params.toString();
    history.replaceState(null, "", location.pathname + (rest ? `?${rest}` : "") + location.hash);
  }
}

export function getToken() {
  return localStorage.getItem(TOKEN_KEY) || sessionStorage.getItem(KIOSK_KEY) || "";
}

export function setToken(token) {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else { localStorage.removeItem(TOKEN_KEY); sessionStorage.removeItem(KIOSK_KEY); }
}

export function onAuthRequired(fn) { authListener = fn; }

export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

function detailMessage(body, status) {
  if (!body) return `HTTP ${status}`;
  const d = body.detail;
  if (typeof d === "string") return d;
  if (Array.isArray(d)) return d.map((e) => `${(e.loc || []).slice(1).join(".")}: ${e.msg}`).join("; ");
  return `HTTP ${status}`;
}

export async function api(path, { method = "GET", body, token } = {}) {
  const headers = { Authorization: `Bearer ${token ?? getToken()}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(`/api/v1${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (res.status === 401 && token === undefined) authListener();
  const isJson = (res.headers.get("content-type") || "").includes("json");
  const data = isJson ? await res.json().catch(() => null) : null;
  if (!res.ok) throw new ApiError(res.status, detailMessage(data, res.status));
  return data;
}

/** An image behind auth (img tags cannot send headers): fetched as a blob, shown by object URL. */
export async function fetchImage(path) {
  const res = await fetch(`/api/v1${path}`, { headers: { Authorization: `Bearer ${getToken()}` } });
  if (!res.ok) throw new ApiError(res.status, `HTTP ${res.status}`);
  const blob = await res.blob();
  const stamp = res.headers.get("x-snapshot-ts") || res.headers.get("last-modified");
  let ts = null;
  if (stamp) ts = /^[0-9.]+$/.test(stamp) ? Number(stamp) : Date.parse(stamp) / 1000;
  return { url: URL.createObjectURL(blob), ts: Number.isFinite(ts) ? ts : null };
}
