// Who is logged in and what they may do (GET /api/v1/session): the
// console shows a page or a button only when the privilege is held
// somewhere (the server still decides per object), and no storage field
// or page to a user whose answers are storage-redacted.
import { get, post, api, setToken } from './api.js';

let current = null;

export async function load() {
    current = await get('/session');
    current.privset = new Set(current.privileges || []);
    return current;
}

export const session = () => current;
export const can = (privilege) => current !== null && current.privset.has(privilege);
export const storageHidden = () => current === null || current.storage_redacted === true;

export async function login(user, password) {
    // An empty input is an absent field: the API names what is missing.
    const body = {};
    if (user) body.user = user;
    if (password) body.password = password;
    const r = await post('/session', body);
    setToken(r.token);
    return load();
}

export async function logout() {
    try {
        await api('DELETE', '/session');
    } finally {
        setToken(null);
        current = null;
    }
}

export function forget() {
    current = null;
}
