// The dashboard: hosts up and unreachable, VMs by state, jobs running,
// the last failures.  Counts come from the lists the user may read.
import { html, useState, usePoll, fmtTime, StateBadge } from '../ui.js';
import { get, getAll, query } from '../api.js';
import { can } from '../session.js';

function countBy(items, key) {
    const m = {};
    for (const it of items) m[it[key]] = (m[it[key]] || 0) + 1;
    return m;
}

function Tile({ label, value, id }) {
    return html`<div class="tile" data-count=${id}><span class="tile-value">${value}</span><span class="tile-label">${label}</span></div>`;
}

export function DashboardPage() {
    const [d, setD] = useState(null);
    const [error, setError] = useState(null);

    usePoll(async () => {
        try {
            const [hosts, vms, running, failed] = await Promise.all([
                can('host.read') ? getAll('/hosts') : null,
                can('vm.read') ? getAll('/vms') : null,
                can('job.read') ? getAll(`/jobs${query({ state: 'running' })}`) : null,
                can('job.read') ? get(`/jobs${query({ state: 'failed', limit: 5 })}`) : null,
            ]);
            setD({ hosts, vms, running, failed });
            setError(null);
        } catch (e) {
            setError(e);
        }
    }, 3000, []);

    if (error) return html`<h1>Dashboard</h1><p class="error" role="alert">${error.message}</p>`;
    if (!d) return html`<h1>Dashboard</h1><p class="muted">Loading…</p>`;
    const more = (r) => (r && !r.complete ? '+' : '');
    const hs = d.hosts ? countBy(d.hosts.items, 'state') : {};
    const vs = d.vms ? countBy(d.vms.items, 'state') : {};
    return html`<h1>Dashboard</h1>
        ${d.hosts &&
        html`<section aria-labelledby="dash-hosts"><h2 id="dash-hosts">Hosts</h2><div class="tiles">
            <${Tile} id="hosts-total" label="hosts" value=${d.hosts.items.length + more(d.hosts)} />
            <${Tile} id="hosts-ok" label="up" value=${hs.ok || 0} />
            <${Tile} id="hosts-unreachable" label="unreachable" value=${hs.unreachable || 0} />
            <${Tile} id="hosts-needs-attention" label="need attention" value=${hs['needs-attention'] || 0} />
        </div></section>`}
        ${d.vms &&
        html`<section aria-labelledby="dash-vms"><h2 id="dash-vms">Virtual machines</h2><div class="tiles">
            <${Tile} id="vms-total" label="VMs" value=${d.vms.items.length + more(d.vms)} />
            ${Object.keys(vs)
                .sort()
                .map((s) => html`<${Tile} id=${`vms-${s}`} label=${s} value=${vs[s]} />`)}
        </div></section>`}
        ${d.running &&
        html`<section aria-labelledby="dash-jobs"><h2 id="dash-jobs">Jobs</h2><div class="tiles">
            <${Tile} id="jobs-running" label="running" value=${d.running.items.length + more(d.running)} />
        </div>
        <h3>Last failures</h3>
        ${d.failed.items.length === 0
            ? html`<p class="muted">No failed jobs.</p>`
            : html`<table class="list"><thead><tr><th scope="col">Job</th><th scope="col">Target</th><th scope="col">Ended</th><th scope="col">Error</th></tr></thead>
              <tbody>${d.failed.items.map(
                  (j) => html`<tr><td>${j.kind}</td><td>${j.target_name}</td><td>${fmtTime(j.finished_at)}</td><td>${j.error && j.error.message}</td></tr>`
              )}</tbody></table>`}
        </section>`}`;
}
