// Catalogs: the list, and a catalog's page with its machine grid
// (provisioning and power state), its image history with Update image
// and Roll back (each a job in the jobs panel), docs/CATALOGS.md.
import { html, useState, usePoll, StateBadge, Field, ErrorNote, fmtTime } from '../ui.js';
import { get, post, getAll } from '../api.js';
import { can } from '../session.js';
import { jobsChanged } from '../jobs.js';

export function CatalogListPage() {
    const [cats, setCats] = useState(null);
    const [error, setError] = useState(null);
    usePoll(async () => {
        try {
            setCats((await getAll('/catalogs')).items);
            setError(null);
        } catch (e) {
            setError(e);
        }
    }, 3000, []);
    return html`<h1>Catalogs</h1>
        ${error && html`<p class="error" role="alert">${error.message}</p>`}
        ${cats === null
            ? html`<p class="muted">Loading…</p>`
            : cats.length === 0
            ? html`<p class="muted">No catalogs.</p>`
            : html`<table class="list catalogs" aria-label="Catalogs">
                <thead><tr><th scope="col">Name</th><th scope="col">Type</th><th scope="col">State</th>
                    <th scope="col">Master</th><th scope="col">Naming</th><th scope="col">Created</th></tr></thead>
                <tbody>${cats.map(
                    (c) => html`<tr data-catalog=${c.name} data-state=${c.state}>
                        <td><a href=${`#/catalogs/${c.id}`}>${c.name}</a></td><td>${c.catalog_type}</td>
                        <td><${StateBadge} state=${c.state} /></td>
                        <td>${c.master_vm_name} @ ${c.master_snapshot}</td><td>${c.naming_scheme}</td>
                        <td>${fmtTime(c.created_at)}</td></tr>`
                )}</tbody></table>`}`;
}

// Power for one machine or all of them: a catalog.power job (at most a
// share of the catalog at a time, the API's default).
function usePower(cat) {
    const [error, setError] = useState(null);
    const power = async (action, machines) => {
        setError(null);
        try {
            await post(`/catalogs/${cat.id}/power`, machines ? { action, machines } : { action });
            jobsChanged();
        } catch (e) {
            setError(e);
        }
    };
    return [error, power];
}

function MachineGrid({ cat, machines }) {
    const [error, power] = usePower(cat);
    if (machines === null) return html`<p class="muted">Loading…</p>`;
    if (machines.length === 0) return html`<p class="muted">No machines.</p>`;
    const may = can('vm.power');
    return html`${may &&
        html`<div class="actions" role="group" aria-label="Power of every machine">
            <button data-action="catalog-start" onClick=${() => power('start')}>Start all</button>
            <button data-action="catalog-shutdown" onClick=${() => power('shutdown')}>Shut down all</button>
        </div>`}
        ${error && html`<p class="error" role="alert">${error.field ? `${error.field}: ` : ''}${error.message}</p>`}
        <ul class="grid machines" aria-label="Machines">${machines.map(
        (m) => html`<li class="machine" data-machine=${m.name} data-provisioning=${m.state} data-power=${m.power_state || 'none'}>
            <strong>${m.vm_id && can('vm.read') ? html`<a href=${`#/vms/${m.vm_id}`}>${m.name}</a>` : m.name}</strong>
            <span><span class="muted">provisioning</span> <${StateBadge} state=${m.state} /></span>
            <span><span class="muted">power</span> ${m.power_state ? html`<${StateBadge} state=${m.power_state} />` : html`<span class="muted">none</span>`}</span>
            ${m.error && html`<span class="error">${m.error}</span>`}
            ${may &&
            m.state === 'ready' &&
            (m.power_state === 'running'
                ? html`<button class="small" data-action="machine-restart" aria-label=${`Restart ${m.name}`} onClick=${() => power('restart', [m.name])}>Restart</button>`
                : html`<button class="small" data-action="machine-start" aria-label=${`Start ${m.name}`} onClick=${() => power('start', [m.name])}>Start</button>`)}
        </li>`
    )}</ul>`;
}

function UpdateImage({ cat }) {
    const [master, setMaster] = useState(cat.master_vm_name || '');
    const [snap, setSnap] = useState('');
    const [busy, setBusy] = useState(false);
    const [error, setError] = useState(null);
    const [note, setNote] = useState(null);
    const run = async (call, done) => {
        setBusy(true);
        setError(null);
        setNote(null);
        try {
            await call();
            jobsChanged();
            setNote(done);
        } catch (e) {
            setError(e);
        } finally {
            setBusy(false);
        }
    };
    const update = (ev) => {
        ev.preventDefault();
        run(() => post(`/catalogs/${cat.id}/images`, { master_vm: master, master_snapshot: snap }), `Update to ${master} @ ${snap} submitted.`);
    };
    const rollback = () => run(() => post(`/catalogs/${cat.id}/rollback`), 'Rollback submitted.');
    return html`<form class="card inline-form" data-form="update-image" onSubmit=${update} aria-labelledby="upd-title">
        <h3 id="upd-title">Update image</h3>
        <${Field} label="Master VM" name="master_vm" form="image" error=${error}>
            ${(id, err) => html`<input id=${id} name="master_vm" value=${master} onInput=${(e) => setMaster(e.target.value)} aria-describedby=${err} />`}
        <//>
        <${Field} label="Master snapshot" name="master_snapshot" form="image" error=${error}>
            ${(id, err) => html`<input id=${id} name="master_snapshot" value=${snap} onInput=${(e) => setSnap(e.target.value)} aria-describedby=${err} />`}
        <//>
        <${ErrorNote} error=${error} />
        <div class="actions">
            <button type="submit" disabled=${busy}>Update image</button>
            <button type="button" data-action="rollback" disabled=${busy} onClick=${rollback}>Roll back to the previous image</button>
        </div>
        ${note && html`<p class="muted" role="status" data-note="image">${note}</p>`}
    </form>`;
}

export function CatalogPage({ args }) {
    const [cat, setCat] = useState(null);
    const [machines, setMachines] = useState(null);
    const [images, setImages] = useState(null);
    const [error, setError] = useState(null);
    const id = args[0];
    usePoll(async () => {
        try {
            const c = await get(`/catalogs/${encodeURIComponent(id)}`);
            const [m, i] = await Promise.all([getAll(`/catalogs/${c.id}/machines`), get(`/catalogs/${c.id}/images`)]);
            setCat(c);
            setMachines(m.items);
            setImages(i.items);
            setError(null);
        } catch (e) {
            setError(e);
        }
    }, 1500, [id]);
    if (!cat) return html`<h1>Catalog</h1>${error ? html`<p class="error" role="alert">${error.message}</p>` : html`<p class="muted">Loading…</p>`}`;
    const count = (k, v) => machines.filter((m) => m[k] === v).length;
    return html`<h1>${cat.name}</h1>
        <dl class="facts">
            <dt>Type</dt><dd>${cat.catalog_type}</dd>
            <dt>State</dt><dd><${StateBadge} state=${cat.state} /></dd>
            <dt>Master</dt><dd>${cat.master_vm_name} @ ${cat.master_snapshot}</dd>
            <dt>Naming</dt><dd>${cat.naming_scheme}</dd>
            <dt>Machines</dt><dd data-count="machines">${machines.length} (${count('state', 'ready')} ready, ${count('power_state', 'running')} running)</dd>
        </dl>
        <section aria-labelledby="machines-title">
            <h2 id="machines-title">Machines</h2>
            <${MachineGrid} cat=${cat} machines=${machines} />
        </section>
        <section aria-labelledby="images-title">
            <h2 id="images-title">Image history</h2>
            <table class="list images"><thead><tr><th scope="col">Version</th><th scope="col">Master</th><th scope="col">State</th>
                <th scope="col">Current</th><th scope="col" class="num">Machines</th><th scope="col">Made</th></tr></thead>
            <tbody>${images.map(
                (i) => html`<tr data-image=${i.version} data-current=${i.current ? 'yes' : 'no'}>
                    <td>v${i.version}</td><td>${i.master_vm_name} @ ${i.master_snapshot}</td>
                    <td><${StateBadge} state=${i.state} />${i.error ? html` <span class="error">${i.error}</span>` : ''}</td>
                    <td>${i.current ? 'current' : ''}</td><td class="num">${i.machines ?? ''}</td><td>${fmtTime(i.created_at)}</td></tr>`
            )}</tbody></table>
            ${can('catalog.change') && html`<${UpdateImage} cat=${cat} />`}
        </section>`;
}
