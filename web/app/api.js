// The REST API as the console speaks it: the same calls as the CLI, a
// bearer token kept in sessionStorage (this tab only), errors as ApiError
// carrying the API's code and field (docs/API.md, "Errors").
const KEY = 'drover.token';
const listeners = { expired: [], connection: [] };

export class ApiError extends Error {
    constructor(status, body) {
        const e = (body && body.error) || {};
        super(e.message || `HTTP ${status}`);
        this.status = status;
        this.code = e.code || 'unknown';
        this.field = e.field || null;
    }
}

export const token = () => sessionStorage.getItem(KEY);
export const setToken = (t) => (t ? sessionStorage.setItem(KEY, t) : sessionStorage.removeItem(KEY));

// 'expired': a 401 on a call made with a token (the session ended);
// 'connection': true/false as the server is reached or not.
export function on(event, fn) {
    listeners[event].push(fn);
}
function emit(event, arg) {
    for (const fn of listeners[event]) fn(arg);
}

let online = true;
function setOnline(v) {
    if (v !== online) {
        online = v;
        emit('connection', v);
    }
}

export async function api(method, path, body) {
    const headers = { Accept: 'application/json' };
    const t = token();
    if (t) headers.Authorization = `Bearer ${t}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let res;
    try {
        res = await fetch(`/api/v1${path}`, {
            method,
            headers,
            body: body === undefined ? undefined : JSON.stringify(body),
            cache: 'no-store',
        });
    } catch (e) {
        setOnline(false);
        throw new ApiError(0, { error: { code: 'unavailable', message: 'The server cannot be reached; retrying.' } });
    }
    setOnline(true);
    const text = await res.text();
    let data = null;
    try {
        data = text ? JSON.parse(text) : null;
    } catch (e) {
        data = { error: { message: text } };
    }
    if (res.status === 401 && t) {
        setToken(null);
        emit('expired');
    }
    if (!res.ok) throw new ApiError(res.status, data);
    return data;
}

export const get = (path) => api('GET', path);
export const post = (path, body) => api('POST', path, body);
export const patch = (path, body) => api('PATCH', path, body);
export const del = (path) => api('DELETE', path);

// A query string from an object, leaving out empty values.
export function query(params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
    const s = q.toString();
    return s ? `?${s}` : '';
}

// Every page of a list (bounded: a dashboard count, not a table).
export async function getAll(path, max = 5000) {
    const items = [];
    let cursor = null;
    do {
        const sep = path.includes('?') ? '&' : '?';
        const page = await get(`${path}${sep}limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
        items.push(...page.items);
        cursor = page.next_cursor;
    } while (cursor && items.length < max);
    return { items, complete: !cursor };
}
