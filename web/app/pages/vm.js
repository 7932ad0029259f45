// A VM: its state and hardware, power actions (each a job, followed in
// the jobs panel), its disks (not for a storage-redacted user) and its
// serial console (xterm.js over the console WebSocket, opened with a
// single-use ticket: docs/API.md, "Consoles").
import { html, useState, useEffect, useRef, usePoll, StateBadge, ErrorNote } from '../ui.js';
import { get, post } from '../api.js';
import { can, storageHidden } from '../session.js';
import { jobsChanged } from '../jobs.js';
import { GraphicalConsole } from '../vnc.js';
import { ChangeForm, Snapshots, CloneForm, DeleteVm } from './vm-actions.js';

// action → the states it applies to (the API refuses the others).
const POWER = [
    { action: 'start', label: 'Start', states: ['shutoff', 'crashed', 'shutdown'] },
    { action: 'shutdown', label: 'Shut down', states: ['running'] },
    { action: 'reboot', label: 'Reboot', states: ['running'] },
    { action: 'stop', label: 'Stop', states: ['running', 'paused', 'shutdown', 'crashed'], danger: true },
];

function SerialConsole({ vm }) {
    const box = useRef(null);
    const [status, setStatus] = useState('connecting');
    useEffect(() => {
        let ws = null;
        let term = null;
        let closed = false;
        (async () => {
            try {
                const t0 = performance.now();
                const { ticket } = await post(`/vms/${vm.id}/console-tickets`);
                const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
                ws = new WebSocket(`${scheme}://${location.host}/api/v1/vms/${vm.id}/console?type=serial&ticket=${encodeURIComponent(ticket)}`);
                ws.binaryType = 'arraybuffer';
                term = new window.Terminal({ convertEol: true, rows: 24, cols: 100, scrollback: 2000 });
                term.open(box.current);
                term.onData((d) => ws.readyState === 1 && ws.send(d));
                ws.onopen = () => {
                    window.droverConsoleConnectMs = performance.now() - t0;
                    setStatus('connected');
                    term.focus();
                };
                ws.onmessage = (ev) => term.write(new Uint8Array(ev.data));
                ws.onclose = (ev) => !closed && setStatus(`closed${ev.reason ? `: ${ev.reason}` : ''}`);
            } catch (e) {
                setStatus(`refused: ${e.message}`);
            }
        })();
        return () => {
            closed = true;
            if (ws) ws.close();
            if (term) term.dispose();
        };
    }, [vm.id]);
    return html`<section aria-labelledby="serial-title">
        <h2 id="serial-title">Serial console <span class="muted" data-console-status=${status}>${status}</span></h2>
        <div class="terminal" ref=${box} role="region" aria-label="Serial console output"></div>
    </section>`;
}

export function VmPage({ args }) {
    const [vm, setVm] = useState(null);
    const [error, setError] = useState(null);
    const [actionError, setActionError] = useState(null);
    const [serial, setSerial] = useState(false);
    const [vnc, setVnc] = useState(false);
    const id = args[0];

    usePoll(async () => {
        try {
            setVm(await get(`/vms/${encodeURIComponent(id)}`));
            setError(null);
        } catch (e) {
            setError(e);
        }
    }, 1000, [id]);

    if (error && !vm) return html`<h1>Virtual machine</h1><p class="error" role="alert">${error.message}</p>`;
    if (!vm) return html`<h1>Virtual machine</h1><p class="muted">Loading…</p>`;

    const power = async (action) => {
        setActionError(null);
        try {
            await post(`/vms/${vm.id}/${action}`);
            jobsChanged();
        } catch (e) {
            setActionError(e);
        }
    };
    // The API gives a VM's disks in its spec (docs/API.md, "VM spec").
    const disks = (vm.spec && vm.spec.disks) || vm.disks;
    const facts = [
        ['State', html`<${StateBadge} state=${vm.state} />`],
        ['vCPUs', vm.vcpus],
        ['Memory', `${vm.memory_mib} MiB`],
        ['Generation', vm.generation],
        ['UUID', vm.uuid],
    ];
    return html`<h1>${vm.name}</h1>
        ${can('vm.power') &&
        html`<div class="actions" role="group" aria-label="Power">
            ${POWER.filter((p) => p.states.includes(vm.state)).map(
                (p) => html`<button class=${p.danger ? 'danger' : ''} data-action=${p.action} onClick=${() => power(p.action)}>${p.label}</button>`
            )}
        </div>`}
        <${ErrorNote} error=${actionError} />
        ${actionError && actionError.field && html`<p class="error" role="alert">${actionError.field}: ${actionError.message}</p>`}
        <dl class="facts">${facts.map(([k, v]) => html`<dt>${k}</dt><dd>${v}</dd>`)}</dl>
        ${!storageHidden() &&
        Array.isArray(disks) &&
        html`<section aria-labelledby="disks-title" data-section="storage">
            <h2 id="disks-title">Disks</h2>
            <table class="list"><thead><tr><th scope="col">Target</th><th scope="col">Device</th><th scope="col">Format</th><th scope="col">Source</th></tr></thead>
            <tbody>${disks.map(
                (d) => html`<tr><td>${d.target}</td><td>${d.device || ''}</td><td>${d.format || ''}</td><td>${d.source || d.path || ''}</td></tr>`
            )}</tbody></table>
        </section>`}
        ${can('vm.console') &&
        vm.state === 'running' &&
        (serial
            ? html`<${SerialConsole} vm=${vm} /><button onClick=${() => setSerial(false)}>Close console</button>`
            : html`<button data-action="serial" onClick=${() => setSerial(true)}>Open serial console</button>`)}
        ${can('vm.console') &&
        vm.state === 'running' &&
        (vnc
            ? html`<${GraphicalConsole} vm=${vm} /><button onClick=${() => setVnc(false)}>Close graphical console</button>`
            : html`<button data-action="vnc" onClick=${() => setVnc(true)}>Open graphical console</button>`)}
        ${can('vm.snapshot') && html`<${Snapshots} vm=${vm} />`}
        ${(can('vm.change') || can('vm.create') || can('vm.delete')) &&
        html`<section aria-labelledby="manage-title" data-section="manage">
            <h2 id="manage-title">Manage</h2>
            <div class="forms">
                ${can('vm.change') && html`<${ChangeForm} key=${`${vm.id}-${vm.vcpus}-${vm.memory_mib}`} vm=${vm} />`}
                ${can('vm.create') && html`<${CloneForm} vm=${vm} />`}
            </div>
            ${can('vm.delete') && html`<${DeleteVm} vm=${vm} />`}
        </section>`}`;
}
