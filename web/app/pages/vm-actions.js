// The VM page's changes, each a job of the public API followed in the
// jobs panel, each form showing the API's field error beside its field:
// change (vCPUs, memory), snapshots (take, list, revert, delete), clone
// and delete (after a confirmation).
import { html, useState, usePoll, Field, ErrorNote, fmtTime } from '../ui.js';
import { get, post, patch, del } from '../api.js';
import { can, storageHidden } from '../session.js';
import { jobsChanged } from '../jobs.js';

// A number typed in the form as the API wants it: a number when it reads
// as one, else the text (the API then names the field and its rule).
const num = (v) => (v !== '' && !Number.isNaN(Number(v)) ? Number(v) : v);

// Submits `call`, shows its error or `done`; returns [busy, error, note, run].
function useSubmit() {
    const [busy, setBusy] = useState(false);
    const [error, setError] = useState(null);
    const [note, setNote] = useState(null);
    const run = async (call, done) => {
        setBusy(true);
        setError(null);
        setNote(null);
        try {
            const r = await call();
            jobsChanged();
            setNote(done(r));
            return r;
        } catch (e) {
            setError(e);
            return null;
        } finally {
            setBusy(false);
        }
    };
    return [busy, error, note, run];
}

function Note({ note, id }) {
    return note ? html`<p class="muted" role="status" data-note=${id}>${note}</p>` : null;
}

export function ChangeForm({ vm }) {
    const [vcpus, setVcpus] = useState(String(vm.vcpus));
    const [memory, setMemory] = useState(String(vm.memory_mib));
    const [busy, error, note, run] = useSubmit();
    const submit = (ev) => {
        ev.preventDefault();
        const body = {};
        if (vcpus !== String(vm.vcpus)) body.vcpus = num(vcpus);
        if (memory !== String(vm.memory_mib)) body.memory_mib = num(memory);
        run(() => patch(`/vms/${vm.id}`, body), () => 'Change submitted.');
    };
    return html`<form class="card inline-form" data-form="change" onSubmit=${submit} aria-labelledby="change-title">
        <h3 id="change-title">Change</h3>
        <${Field} label="vCPUs" name="vcpus" form="change" error=${error}>
            ${(id, err) => html`<input id=${id} name="vcpus" inputmode="numeric" value=${vcpus}
                onInput=${(e) => setVcpus(e.target.value)} aria-describedby=${err} />`}
        <//>
        <${Field} label="Memory (MiB)" name="memory_mib" form="change" error=${error}>
            ${(id, err) => html`<input id=${id} name="memory_mib" inputmode="numeric" value=${memory}
                onInput=${(e) => setMemory(e.target.value)} aria-describedby=${err} />`}
        <//>
        <${ErrorNote} error=${error} />
        <button type="submit" disabled=${busy}>Apply</button>
        <${Note} note=${note} id="change" />
    </form>`;
}

export function Snapshots({ vm }) {
    const [snaps, setSnaps] = useState(null);
    const [name, setName] = useState('');
    const [description, setDescription] = useState('');
    const [busy, error, note, run] = useSubmit();
    const [rowError, setRowError] = useState(null);
    const [confirm, setConfirm] = useState(null);

    usePoll(async () => {
        const r = await get(`/vms/${vm.id}/snapshots`);
        setSnaps(r.items);
    }, 1500, [vm.id]);

    const create = (ev) => {
        ev.preventDefault();
        const body = { name };
        if (description) body.description = description;
        run(() => post(`/vms/${vm.id}/snapshots`, body), () => {
            setName('');
            setDescription('');
            return `Snapshot ${name} submitted.`;
        });
    };
    const act = async (s, what) => {
        setRowError(null);
        setConfirm(null);
        try {
            const path = `/vms/${vm.id}/snapshots/${encodeURIComponent(s.name)}`;
            if (what === 'revert') await post(`${path}/revert`);
            else await del(path);
            jobsChanged();
        } catch (e) {
            setRowError(e);
        }
    };
    return html`<section aria-labelledby="snap-title" data-section="snapshots">
        <h2 id="snap-title">Snapshots</h2>
        ${rowError && html`<p class="error" role="alert">${rowError.message}</p>`}
        ${snaps === null
            ? html`<p class="muted">Loading…</p>`
            : snaps.length === 0
            ? html`<p class="muted" data-empty="snapshots">No snapshots.</p>`
            : html`<table class="list snapshots">
                <thead><tr><th scope="col">Name</th><th scope="col">Kind</th><th scope="col">VM was</th>
                    <th scope="col">Taken</th><th scope="col">Current</th><th scope="col">Actions</th></tr></thead>
                <tbody>${snaps.map(
                    (s) => html`<tr data-snapshot=${s.name}>
                        <td>${s.name}${s.description ? html` <span class="muted">${s.description}</span>` : ''}</td>
                        <td>${s.kind}${s.memory ? ' + memory' : ''}</td><td>${s.vm_state}</td>
                        <td>${fmtTime(s.created_at)}</td><td>${s.is_current ? 'yes' : ''}</td>
                        <td>
                            ${can('vm.snapshot') &&
                            html`<button class="small" data-action="snapshot-revert" onClick=${() => act(s, 'revert')}>Revert</button> `}
                            ${can('vm.snapshot') &&
                            (confirm === s.name
                                ? html`<span role="group" aria-label=${`Delete snapshot ${s.name}?`}>
                                    <button class="small danger" data-action="snapshot-delete-confirm" onClick=${() => act(s, 'delete')}>Delete ${s.name}</button>
                                    <button class="small" onClick=${() => setConfirm(null)}>Keep</button></span>`
                                : html`<button class="small" data-action="snapshot-delete" onClick=${() => setConfirm(s.name)}>Delete</button>`)}
                        </td>
                    </tr>`
                )}</tbody></table>`}
        ${can('vm.snapshot') &&
        html`<form class="card inline-form" data-form="snapshot" onSubmit=${create} aria-label="Take a snapshot">
            <${Field} label="Snapshot name" name="name" form="snapshot" error=${error}>
                ${(id, err) => html`<input id=${id} name="name" value=${name} onInput=${(e) => setName(e.target.value)} aria-describedby=${err} />`}
            <//>
            <${Field} label="Description" name="description" form="snapshot" error=${error}>
                ${(id, err) => html`<input id=${id} name="description" value=${description}
                    onInput=${(e) => setDescription(e.target.value)} aria-describedby=${err} />`}
            <//>
            <${ErrorNote} error=${error} />
            <button type="submit" disabled=${busy}>Take snapshot</button>
            <${Note} note=${note} id="snapshot" />
        </form>`}
    </section>`;
}

export function CloneForm({ vm }) {
    const [name, setName] = useState('');
    const [linked, setLinked] = useState(false);
    const [busy, error, note, run] = useSubmit();
    const submit = (ev) => {
        ev.preventDefault();
        const body = { name };
        if (linked) body.linked = true;
        run(() => post(`/vms/${vm.id}/clone`, body), () => `Clone ${name} submitted.`);
    };
    return html`<form class="card inline-form" data-form="clone" onSubmit=${submit} aria-labelledby="clone-title">
        <h3 id="clone-title">Clone</h3>
        <${Field} label="Name of the copy" name="name" form="clone" error=${error}>
            ${(id, err) => html`<input id=${id} name="name" value=${name} onInput=${(e) => setName(e.target.value)} aria-describedby=${err} />`}
        <//>
        ${!storageHidden() &&
        html`<label class="inline"><input type="checkbox" name="linked" checked=${linked}
            onChange=${(e) => setLinked(e.target.checked)} /> Linked (a shared base and an overlay)</label>`}
        <${ErrorNote} error=${error} />
        <button type="submit" disabled=${busy}>Clone</button>
        <${Note} note=${note} id="clone" />
    </form>`;
}

export function DeleteVm({ vm }) {
    const [asking, setAsking] = useState(false);
    const [volumes, setVolumes] = useState(false);
    const [busy, error, , run] = useSubmit();
    const running = vm.state !== 'shutoff' && vm.state !== 'crashed';
    const go = async () => {
        const q = [];
        if (volumes) q.push('delete_volumes=true');
        if (running) q.push('force=true');
        const r = await run(() => del(`/vms/${vm.id}${q.length ? `?${q.join('&')}` : ''}`), () => null);
        if (r) location.hash = '#/vms';
    };
    if (!asking)
        return html`<button class="danger" data-action="delete" onClick=${() => setAsking(true)}>Delete VM</button>`;
    return html`<div class="card confirm" role="alertdialog" aria-labelledby="del-title" data-confirm="delete">
        <h3 id="del-title">Delete ${vm.name}?</h3>
        <p>${running ? 'It is running: it is forced off first. ' : ''}This cannot be undone.</p>
        ${!storageHidden() &&
        html`<label class="inline"><input type="checkbox" name="delete_volumes" checked=${volumes}
            onChange=${(e) => setVolumes(e.target.checked)} /> Also delete its volumes</label>`}
        <${ErrorNote} error=${error} />
        ${error && error.field && html`<p class="error" role="alert">${error.field}: ${error.message}</p>`}
        <div class="actions">
            <button class="danger" data-action="delete-confirm" disabled=${busy} onClick=${go}>Delete ${vm.name}</button>
            <button data-action="delete-cancel" onClick=${() => setAsking(false)}>Cancel</button>
        </div>
    </div>`;
}
