// Hosts: the list with each host's state, facts and limits (ours beside
// libvirtd's own, docs/API.md "Hosts"), and one host's page.
import { html, useState, usePoll, StateBadge, fmtTime } from '../ui.js';
import { get, getAll } from '../api.js';

const GIB = 1024;
const mem = (mib) => (mib === undefined || mib === null ? '' : mib >= GIB ? `${(mib / GIB).toFixed(1)} GiB` : `${mib} MiB`);

export function HostListPage() {
    const [hosts, setHosts] = useState(null);
    const [error, setError] = useState(null);
    usePoll(async () => {
        try {
            setHosts((await getAll('/hosts')).items);
            setError(null);
        } catch (e) {
            setError(e);
        }
    }, 3000, []);
    return html`<h1>Hosts</h1>
        ${error && html`<p class="error" role="alert">${error.message}</p>`}
        ${hosts === null
            ? html`<p class="muted">Loading…</p>`
            : html`<table class="list hosts" aria-label="Hosts">
                <thead><tr><th scope="col">Name</th><th scope="col">State</th><th scope="col">URI</th>
                    <th scope="col" class="num">CPUs</th><th scope="col" class="num">Memory</th>
                    <th scope="col">Hypervisor</th><th scope="col" class="num">Connections</th><th scope="col" class="num">Operations</th></tr></thead>
                <tbody>${hosts.map(
                    (h) => html`<tr data-host=${h.name} data-state=${h.state}>
                        <td><a href=${`#/hosts/${h.id}`}>${h.name}</a></td>
                        <td><${StateBadge} state=${h.state} />${h.state_reason ? html` <span class="muted">${h.state_reason}</span>` : ''}</td>
                        <td>${h.uri}</td><td class="num">${h.cpus ?? ''}</td><td class="num">${mem(h.memory_mib)}</td>
                        <td>${h.hypervisor_type || ''} ${h.hypervisor_version || ''}</td>
                        <td class="num">${h.limits ? h.limits.max_connections : ''}</td>
                        <td class="num">${h.limits ? h.limits.max_concurrent_operations : ''}</td>
                    </tr>`
                )}</tbody></table>`}`;
}

export function HostPage({ args }) {
    const [host, setHost] = useState(null);
    const [error, setError] = useState(null);
    usePoll(async () => {
        try {
            setHost(await get(`/hosts/${encodeURIComponent(args[0])}`));
            setError(null);
        } catch (e) {
            setError(e);
        }
    }, 3000, [args[0]]);
    if (!host) return html`<h1>Host</h1>${error ? html`<p class="error" role="alert">${error.message}</p>` : html`<p class="muted">Loading…</p>`}`;
    const facts = [
        ['State', html`<${StateBadge} state=${host.state} />`],
        ['URI', host.uri],
        ['Host name', host.hostname],
        ['CPUs', host.cpus],
        ['Memory', mem(host.memory_mib)],
        ['Free memory', mem(host.free_memory_mib)],
        ['Hypervisor', `${host.hypervisor_type || ''} ${host.hypervisor_version || ''}`],
        ['libvirt', host.libvirt_version],
        ['Domain type', host.domain_type],
        ['Refreshed', fmtTime(host.refreshed_at)],
    ].filter(([, v]) => v !== undefined && v !== null && v !== '');
    const l = host.limits || {};
    const d = l.daemon || {};
    return html`<h1>${host.name}</h1>
        <dl class="facts" data-section="host-facts">${facts.map(([k, v]) => html`<dt>${k}</dt><dd>${v}</dd>`)}</dl>
        ${host.state_reason && html`<p class="muted">${host.state_reason}</p>`}
        <section aria-labelledby="limits-title">
            <h2 id="limits-title">Limits</h2>
            <table class="list limits"><thead><tr><th scope="col">Limit</th><th scope="col" class="num">Drover</th><th scope="col" class="num">libvirtd</th></tr></thead>
            <tbody>
                <tr data-limit="connections"><td>Connections</td><td class="num">${l.max_connections ?? ''}</td><td class="num">${d.max_clients ?? 'not read'}</td></tr>
                <tr data-limit="operations"><td>Concurrent operations</td><td class="num">${l.max_concurrent_operations ?? ''}</td><td class="num">${d.max_workers ?? 'not read'}</td></tr>
                <tr data-limit="requests"><td>Requests per client</td><td class="num"></td><td class="num">${d.max_client_requests ?? 'not read'}</td></tr>
            </tbody></table>
        </section>
        ${Array.isArray(host.rights) &&
        html`<section aria-labelledby="rights-title"><h2 id="rights-title">Rights</h2><p>${host.rights.join(', ')}</p></section>`}`;
}
