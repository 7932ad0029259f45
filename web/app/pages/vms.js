// The VM list: paged by the API (limit and cursor), filtered by the API
// (name prefix, state, host), sorted within the page on the client (the
// API pages by name), kept live by reading the page again every second
// while it is shown (docs/WEB.md, "Live state").
import { html, useState, useEffect, useRef, usePoll, StateBadge } from '../ui.js';
import { get, getAll, query } from '../api.js';
import { can } from '../session.js';
import { InventoryTree } from '../tree.js';

const PAGE = 50;
const STATES = ['', 'running', 'paused', 'shutdown', 'shutoff', 'crashed', 'pmsuspended', 'unknown', 'creating', 'missing'];
const COLUMNS = [
    { key: 'name', label: 'Name' },
    { key: 'state', label: 'State' },
    { key: 'host', label: 'Host' },
    { key: 'vcpus', label: 'vCPUs', num: true },
    { key: 'memory_mib', label: 'Memory (MiB)', num: true },
];

export function VmListPage() {
    const [filter, setFilter] = useState({ name_prefix: '', state: '' });
    const [cursors, setCursors] = useState([null]); // cursor of each page seen
    const [page, setPage] = useState(null);
    const [hosts, setHosts] = useState({});
    const [sort, setSort] = useState({ key: 'name', dir: 1 });
    const [error, setError] = useState(null);
    const cursor = cursors[cursors.length - 1];

    useEffect(() => {
        if (can('host.read'))
            getAll('/hosts').then((r) => setHosts(Object.fromEntries(r.items.map((h) => [h.id, h.name]))), setError);
    }, []);

    // Only the newest read is shown: one for an older filter may answer
    // after it.
    const seq = useRef(0);
    usePoll(async () => {
        const mine = ++seq.current;
        try {
            const r = await get(`/vms${query({ ...filter, limit: PAGE, cursor })}`);
            if (mine !== seq.current) return;
            setPage(r);
            setError(null);
        } catch (e) {
            setError(e);
        }
    }, 1000, [filter, cursor]);

    const setF = (k) => (e) => {
        setCursors([null]);
        const v = e.target.value;
        setFilter((f) => ({ ...f, [k]: v }));
    };
    const col = COLUMNS.find((c) => c.key === sort.key);
    const rows = page
        ? page.items
              .map((v) => ({ ...v, host: hosts[v.host_id] || v.host_id }))
              .sort((a, b) => {
                  const x = a[sort.key];
                  const y = b[sort.key];
                  return sort.dir * (col.num ? (x || 0) - (y || 0) : String(x || '').localeCompare(String(y || '')));
              })
        : [];
    const sortBy = (key) => setSort({ key, dir: sort.key === key ? -sort.dir : 1 });

    return html`<div class="with-tree"><${InventoryTree} /><div class="list-col"><h1>Virtual machines</h1>
        <form class="filters" role="search" onSubmit=${(e) => e.preventDefault()}>
            <label for="vm-filter-name">Name starts with</label>
            <input id="vm-filter-name" type="search" defaultValue=${filter.name_prefix} onInput=${setF('name_prefix')} />
            <label for="vm-filter-state">State</label>
            <select id="vm-filter-state" value=${filter.state} onChange=${setF('state')}>
                ${STATES.map((s) => html`<option value=${s}>${s || 'any'}</option>`)}
            </select>
        </form>
        ${error && html`<p class="error" role="alert">${error.field ? `${error.field}: ` : ''}${error.message}</p>`}
        <table class="list vms" aria-label="Virtual machines" aria-busy=${page ? 'false' : 'true'}>
            <thead><tr>${COLUMNS.map(
                (c) => html`<th scope="col" aria-sort=${sort.key === c.key ? (sort.dir > 0 ? 'ascending' : 'descending') : 'none'}>
                    <button class="sort" onClick=${() => sortBy(c.key)}>${c.label}</button></th>`
            )}</tr></thead>
            <tbody>
                ${rows.map(
                    (v) => html`<tr data-vm=${v.name} data-state=${v.state}>
                        <td><a href=${`#/vms/${v.id}`}>${v.name}</a></td>
                        <td><${StateBadge} state=${v.state} /></td>
                        <td>${v.host}</td>
                        <td class="num">${v.vcpus}</td>
                        <td class="num">${v.memory_mib}</td>
                    </tr>`
                )}
            </tbody>
        </table>
        ${page && page.items.length === 0 && html`<p class="muted">No virtual machines match.</p>`}
        <nav class="pager" aria-label="Pages">
            <button disabled=${cursors.length === 1} onClick=${() => setCursors(cursors.slice(0, -1))}>Previous page</button>
            <span>Page ${cursors.length}</span>
            <button disabled=${!page || !page.next_cursor} onClick=${() => setCursors([...cursors, page.next_cursor])}>Next page</button>
        </nav></div></div>`;
}
