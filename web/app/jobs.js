// The jobs panel, on every page: jobs queued or running with their
// weighted progress and a cancel button, and the last ones that ended,
// a failed job with its error (docs/API.md, "Changes are jobs").
import { html, useState, usePoll } from './ui.js';
import { get, post, query } from './api.js';
import { can } from './session.js';

const ACTIVE = new Set(['queued', 'running']);

// Pages call this after submitting a job so the panel shows it at once.
let kick = () => {};
export const jobsChanged = () => kick();

export function JobsPanel() {
    const [jobs, setJobs] = useState([]);
    const [error, setError] = useState(null);
    const [, setTick] = useState(0);
    kick = () => setTick((n) => n + 1);

    usePoll(async () => {
        try {
            const r = await get(`/jobs${query({ limit: 15 })}`);
            setJobs(r.items);
            setError(null);
        } catch (e) {
            setError(e);
        }
    }, 1500, []);

    const cancel = async (job) => {
        try {
            await post(`/jobs/${job.id}/cancel`);
        } catch (e) {
            setError(e);
        }
    };

    const active = jobs.filter((j) => ACTIVE.has(j.state));
    const ended = jobs.filter((j) => !ACTIVE.has(j.state)).slice(0, 6);
    const row = (j) => html`<li class=${`job job-${j.state}`} data-job=${j.id}>
        <div class="job-head">
            <span class="job-kind">${j.kind}</span>
            <span class="job-target">${j.target_name || ''}</span>
            <span class=${`badge state-${j.state}`}>${j.state}</span>
        </div>
        ${ACTIVE.has(j.state) &&
        html`<div class="job-progress">
            <progress max="100" value=${j.progress || 0} aria-label=${`${j.kind} ${j.target_name || ''} progress`}></progress>
            <span>${j.progress || 0}%${j.current_step ? ` · ${j.current_step}` : ''}</span>
            ${can('job.change') && html`<button class="small" onClick=${() => cancel(j)}>Cancel</button>`}
        </div>`}
        ${j.state === 'failed' && j.error && html`<p class="job-error">${j.error.message}</p>`}
    </li>`;

    return html`<aside class="jobs" aria-label="Jobs">
        <h2>Jobs <span class="count">${active.length} running</span></h2>
        ${error && html`<p class="error">${error.message}</p>`}
        <ul class="job-list">${active.map(row)}</ul>
        <h3>Recent</h3>
        <ul class="job-list">${ended.length ? ended.map(row) : html`<li class="muted">No jobs yet.</li>`}</ul>
    </aside>`;
}
