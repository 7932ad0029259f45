// The view library (Preact with htm: tagged templates, no build step)
// and the few widgets every page uses.
import { h, render } from '../vendor/preact.mjs';
import { useState, useEffect, useRef, useCallback } from '../vendor/preact-hooks.mjs';
import htm from '../vendor/htm.mjs';

export const html = htm.bind(h);
export { render, useState, useEffect, useRef, useCallback };

// The API's field error beside its field: `field` is the name the API
// reports (error.field), `error` the ApiError or null.
// `form` tells apart two forms of a page with a field of the same name.
export function Field({ label, name, error, children, form }) {
    const mine = error && error.field === name;
    const id = form ? `f-${form}-${name}` : `f-${name}`;
    return html`<div class="field">
        <label for=${id}>${label}</label>
        ${children(id, mine ? `${id}-err` : undefined)}
        ${mine && html`<p class="field-error" id=${`${id}-err`} role="alert">${error.message}</p>`}
    </div>`;
}

// An error that belongs to no field.
export function ErrorNote({ error }) {
    if (!error || error.field) return null;
    return html`<p class="error" role="alert">${error.message}</p>`;
}

export function StateBadge({ state }) {
    return html`<span class=${`badge state-${state}`}>${state}</span>`;
}

export function fmtTime(iso) {
    if (!iso) return '';
    const d = new Date(iso);
    return d.toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'medium' });
}

// Calls fn every `ms` while the page is visible, and once at once.
export function usePoll(fn, ms, deps) {
    useEffect(() => {
        let stop = false;
        let timer = null;
        const tick = async () => {
            if (stop) return;
            if (!document.hidden) {
                try {
                    await fn();
                } catch (e) {
                    /* shown by the call itself; keep polling */
                }
            }
            if (!stop) timer = setTimeout(tick, ms);
        };
        tick();
        return () => {
            stop = true;
            clearTimeout(timer);
        };
    }, deps);
}
