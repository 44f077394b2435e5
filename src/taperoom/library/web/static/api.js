// The library's API as the page uses it: JSON in and out, the session's CSRF token on changes.
const CSRF = document.querySelector('meta[name="csrf-token"]')?.content || '';

export class ApiError extends Error {
  constructor(status, body) {
    super((body && (body.message || body.error)) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

export async function api(path, {method = 'GET', body, query, raw = false} = {}) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, v);
  }
  const headers = {Accept: 'application/json'};
  if (CSRF && method !== 'GET') headers['X-CSRF-Token'] = CSRF;
  let payload;
  if (body instanceof FormData) payload = body;
  else if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  const res = await fetch(url, {method, headers, body: payload, credentials: 'same-origin'});
  if (raw) return res;
  const text = await res.text();
  const data = text ? JSON.parse(text) : null;
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

// Live events of /ws: handlers by event name ("*" for all); reconnects after a drop.
export function liveEvents(onEvent, onState) {
  let ws;
  let delay = 500;
  const open = () => {
    const proto = location.protocol === 'https:' ? 'wss' : 'ws';
    ws = new WebSocket(`${proto}://${location.host}/ws`);
    ws.onopen = () => { delay = 500; onState && onState(true); };
    ws.onmessage = (m) => {
      try { const msg = JSON.parse(m.data); if (msg.event) onEvent(msg.event, msg.data || {}); }
      catch (e) { /* not JSON: ignored */ }
    };
    ws.onclose = () => {
      onState && onState(false);
      setTimeout(open, delay);
      delay = Math.min(delay * 2, 10000);
    };
  };
  open();
  return () => { ws.onclose = null; ws.close(); };
}

export function formatTime(seconds) {
  if (seconds === null || seconds === undefined || isNaN(seconds)) return '';
  const s = Math.max(0, Math.round(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}
