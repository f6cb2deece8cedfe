// The gateway's HTTP and WebSocket endpoints, as the page calls them.
//
// URLs are relative to the page (served at <gateway>/demo/), so the demo also works
// behind a reverse proxy that mounts the gateway under a path prefix.

const KEY_STORAGE = 'stt-gateway.api-key';

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// The API key lives in this tab's sessionStorage only.
export const apiKey = {
  get: () => sessionStorage.getItem(KEY_STORAGE) || '',
  set: (key) => (key ? sessionStorage.setItem(KEY_STORAGE, key) : sessionStorage.removeItem(KEY_STORAGE)),
};

function endpoint(path) {
  return new URL(`../${path}`, document.baseURI);
}

function authHeaders() {
  const key = apiKey.get();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

// The message of an error response: the gateway's {"error": {"message"}} or
// FastAPI's validation body {"detail": [{"loc": [...], "msg"}]}.
async function errorOf(response) {
  let message = `${response.status} ${response.statusText}`.trim();
  try {
    const body = await response.json();
    if (body.error && body.error.message) message = body.error.message;
    else if (Array.isArray(body.detail)) {
      message = body.detail.map((d) => `${(d.loc || []).filter((p) => p !== 'body').join('.')}: ${d.msg}`).join('; ');
    } else if (typeof body.detail === 'string') message = body.detail;
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(response.status, message);
}

async function call(path, init = {}) {
  let response;
  try {
    response = await fetch(endpoint(path), { ...init, headers: { ...authHeaders(), ...(init.headers || {}) } });
  } catch (error) {
    throw new ApiError(0, `the server cannot be reached (${error.message})`);
  }
  if (!response.ok) throw await errorOf(response);
  return response;
}

// GET /v0/models: [{id, languages (list or null), bundled, default, multilingual, alias_of}]
export async function listModels() {
  const response = await call('v0/models');
  return (await response.json()).data;
}

// POST /v0/audio/transcriptions as verbose_json with segment times (and speakers, diarized).
export async function transcribeFile(file, { model, language, diarize, redact }) {
  const form = new FormData();
  form.append('model', model);
  if (language) form.append('language', language);
  if (diarize) form.append('diarize', 'true');
  if (redact) form.append('redact', redact);
  form.append('response_format', 'verbose_json');
  form.append('timestamp_granularities[]', 'segment');
  form.append('file', file, file.name);
  const response = await call('v0/audio/transcriptions', { method: 'POST', body: form });
  return response.json();
}

// GET /v0/sessions: the live sessions [{session_id, kind, labels, audio_s, …}]
export async function listSessions() {
  const response = await call('v0/sessions');
  return (await response.json()).data;
}

// GET /readyz (public, no key): whether the server takes a new stream now, and if not (503,
// at capacity or shutting down) how long it asks to wait. Throws when it cannot be reached.
export async function readiness() {
  const response = await fetch(endpoint('readyz'), { cache: 'no-store' });
  const retryAfter = Number.parseInt(response.headers.get('Retry-After'), 10);
  return { ready: response.ok, status: response.status, retryAfterS: retryAfter >= 0 ? retryAfter : null };
}

// A WebSocket endpoint and the subprotocols that carry the key (browsers cannot set headers).
function socketEndpoint(path, query = {}) {
  const url = endpoint(path);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  for (const [name, value] of Object.entries(query)) {
    if (value !== null && value !== undefined && value !== '') url.searchParams.set(name, value);
  }
  const key = apiKey.get();
  return { url: url.href, protocols: key ? ['stt-gateway', `bearer.${key}`] : ['stt-gateway'] };
}

// A session's events, for a follower.
export function sessionEventsEndpoint(sessionId) {
  return socketEndpoint(`v0/sessions/${encodeURIComponent(sessionId)}/events`);
}

// The live stream, with its session options as the query.
export function streamEndpoint(options) {
  return socketEndpoint('v0/audio/stream', options);
}
