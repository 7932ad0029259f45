// The inventory tree beside the VM list: host groups → clusters → hosts
// → VMs (a host's VMs read when it is opened, one page of 50).  Native
// <details> elements: keyboard and screen readers work as they are.
import { html, useState, usePoll } from './ui.js';
import { get, getAll, query } from './api.js';
import { can } from './session.js';

function HostNode({ host }) {
    const [vms, setVms] = useState(null);
    const toggle = async (ev) => {
        if (ev.target.open && vms === null) {
            try {
                const r = await get(`/vms${query({ host_id: host.id, limit: 50 })}`);
                setVms({ items: r.items, more: !!r.next_cursor });
            } catch (e) {
                setVms({ items: [], more: false, error: e.message });
            }
        }
    };
    return html`<li><details data-tree-host=${host.name} onToggle=${toggle}>
        <summary><span class=${`dot state-${host.state}`} aria-hidden="true"></span> ${host.name}</summary>
        ${vms &&
        html`<ul>${vms.items.map((v) => html`<li data-tree-vm=${v.name}><a href=${`#/vms/${v.id}`}>${v.name}</a> <span class="muted">${v.state}</span></li>`)}
            ${vms.more && html`<li class="muted">more in the list…</li>`}
            ${vms.error && html`<li class="error">${vms.error}</li>`}</ul>`}
    </details></li>`;
}

export function InventoryTree() {
    const [inv, setInv] = useState(null);
    usePoll(async () => {
        const [groups, clusters, hosts] = await Promise.all([
            can('host_group.read') ? getAll('/host-groups') : { items: [] },
            can('cluster.read') ? getAll('/clusters') : { items: [] },
            can('host.read') ? getAll('/hosts') : { items: [] },
        ]);
        setInv({ groups: groups.items, clusters: clusters.items, hosts: hosts.items });
    }, 5000, []);
    if (!inv) return html`<nav class="tree" aria-label="Inventory"><p class="muted">Loading…</p></nav>`;
    const hostsIn = (pred) => inv.hosts.filter(pred).map((h) => html`<${HostNode} key=${h.id} host=${h} />`);
    const clusterNode = (c) => html`<li><details open data-tree-cluster=${c.name}><summary>${c.name}</summary>
        <ul>${hostsIn((h) => h.cluster_id === c.id)}</ul></details></li>`;
    const groupNode = (g) => html`<li><details open data-tree-group=${g.name}><summary>${g.name}</summary><ul>
        ${inv.groups.filter((x) => x.parent_id === g.id).map(groupNode)}
        ${inv.clusters.filter((c) => c.host_group_id === g.id).map(clusterNode)}
        ${hostsIn((h) => h.host_group_id === g.id && !h.cluster_id)}
    </ul></details></li>`;
    const known = new Set(inv.groups.map((g) => g.id));
    const clusterIds = new Set(inv.clusters.map((c) => c.id));
    return html`<nav class="tree" aria-label="Inventory">
        <h2>Inventory</h2>
        <ul>
            ${inv.groups.filter((g) => !g.parent_id || !known.has(g.parent_id)).map(groupNode)}
            ${inv.clusters.filter((c) => !c.host_group_id || !known.has(c.host_group_id)).map(clusterNode)}
            ${hostsIn((h) => (!h.host_group_id || !known.has(h.host_group_id)) && (!h.cluster_id || !clusterIds.has(h.cluster_id)))}
        </ul>
    </nav>`;
}
