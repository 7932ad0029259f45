// The console's shell: the hash router, the page frame (navigation,
// theme, user, jobs panel) and what happens when the session ends.
// Pages are modules under pages/ listed in ROUTES (docs/WEB.md, "Adding
// a page").
import { html, render, useState, useEffect } from './ui.js';
import { on, token } from './api.js';
import { load, session, can, storageHidden, logout, forget } from './session.js';
import { JobsPanel } from './jobs.js';
import { installStyleShim } from './csp-styles.js';
import { LoginPage } from './pages/login.js';
import { DashboardPage } from './pages/dashboard.js';
import { VmListPage } from './pages/vms.js';
import { VmPage } from './pages/vm.js';
import { HostListPage, HostPage } from './pages/hosts.js';
import { CatalogListPage, CatalogPage } from './pages/catalogs.js';

// pattern → page; `nav` puts it in the navigation, shown only with
// `privilege` (and not to a storage-redacted user when `storage`).
const ROUTES = [
    { pattern: /^\/$/, page: DashboardPage, nav: 'Dashboard', href: '#/' },
    { pattern: /^\/vms$/, page: VmListPage, nav: 'Virtual machines', href: '#/vms', privilege: 'vm.read' },
    { pattern: /^\/vms\/([^/]+)$/, page: VmPage, privilege: 'vm.read' },
    { pattern: /^\/hosts$/, page: HostListPage, nav: 'Hosts', href: '#/hosts', privilege: 'host.read' },
    { pattern: /^\/hosts\/([^/]+)$/, page: HostPage, privilege: 'host.read' },
    { pattern: /^\/catalogs$/, page: CatalogListPage, nav: 'Catalogs', href: '#/catalogs', privilege: 'catalog.read' },
    { pattern: /^\/catalogs\/([^/]+)$/, page: CatalogPage, privilege: 'catalog.read' },
];

function visible(r) {
    return (!r.privilege || can(r.privilege)) && !(r.storage && storageHidden());
}

function parseHash() {
    const h = location.hash.replace(/^#/, '') || '/';
    const [path, q] = h.split('?');
    return { path, params: new URLSearchParams(q || '') };
}

// Theme: the system's unless chosen here (kept in localStorage).
const THEMES = ['system', 'light', 'dark'];
function applyTheme(t) {
    if (t === 'system') document.documentElement.removeAttribute('data-theme');
    else document.documentElement.setAttribute('data-theme', t);
}
function ThemeToggle() {
    const [theme, setTheme] = useState(localStorage.getItem('drover.theme') || 'system');
    useEffect(() => applyTheme(theme), [theme]);
    // From the state as it is, not as this render saw it: two quick
    // clicks are two steps.
    const next = () =>
        setTheme((cur) => {
            const t = THEMES[(THEMES.indexOf(cur) + 1) % THEMES.length];
            localStorage.setItem('drover.theme', t);
            return t;
        });
    return html`<button class="theme" onClick=${next} title="Colour theme" aria-label=${`Theme: ${theme}`}>
        Theme: ${theme}
    </button>`;
}

function Frame({ route, children }) {
    const s = session();
    const out = async () => {
        await logout();
        location.hash = '#/login';
    };
    return html`<a class="skip" href="#main">Skip to content</a>
        <header class="top">
            <a class="brand" href="#/">Drover</a>
            <nav aria-label="Main">
                <ul>
                    ${ROUTES.filter((r) => r.nav && visible(r)).map(
                        (r) => html`<li><a href=${r.href} aria-current=${route === r ? 'page' : undefined}>${r.nav}</a></li>`
                    )}
                </ul>
            </nav>
            <span class="user" data-user=${s.user}>${s.user}${s.roles && s.roles.length ? ` · ${s.roles.join(', ')}` : ''}</span>
            <${ThemeToggle} />
            <button onClick=${out}>Log out</button>
        </header>
        <div class="body">
            <main id="main" tabindex="-1">${children}</main>
            <${JobsPanel} />
        </div>`;
}

function Offline() {
    const [down, setDown] = useState(false);
    useEffect(() => on('connection', (up) => setDown(!up)), []);
    return down ? html`<div class="offline" role="status">Connection to the server lost; reconnecting…</div>` : null;
}

function App() {
    const [loc, setLoc] = useState(parseHash());
    const [ready, setReady] = useState(false);
    const [, force] = useState(0);

    useEffect(() => {
        const onHash = () => setLoc(parseHash());
        window.addEventListener('hashchange', onHash);
        // The session ended (expired, logged out elsewhere): to the login
        // page, and back here after it.
        // Several reads in flight end with a 401 each: the first moves to
        // the login page, the others must not drop its `next`.
        on('expired', () => {
            forget();
            if (location.hash.startsWith('#/login')) return;
            const back = location.hash.replace(/^#/, '');
            location.hash = `#/login${back ? `?next=${encodeURIComponent(back)}` : ''}`;
        });
        (async () => {
            if (token()) {
                try {
                    await load();
                } catch (e) {
                    /* 401: the expired handler moved us to the login page */
                }
            }
            setReady(true);
        })();
        return () => window.removeEventListener('hashchange', onHash);
    }, []);

    if (!ready) return html`<p class="boot">Loading Drover…</p>`;
    if (loc.path === '/login' || !session()) {
        if (loc.path !== '/login') {
            location.hash = `#/login?next=${encodeURIComponent(loc.path)}`;
            return null;
        }
        return html`<${Offline} /><${LoginPage} next=${loc.params.get('next') || '/'} onDone=${() => force((n) => n + 1)} />`;
    }
    for (const r of ROUTES) {
        const m = loc.path.match(r.pattern);
        if (m && visible(r)) {
            const Page = r.page;
            return html`<${Offline} /><${Frame} route=${r}><${Page} key=${loc.path} args=${m.slice(1)} params=${loc.params} /><//>`;
        }
    }
    return html`<${Frame}><h1>Not found</h1><p>No page at ${loc.path}. <a href="#/">Dashboard</a></p><//>`;
}

installStyleShim();
applyTheme(localStorage.getItem('drover.theme') || 'system');
render(html`<${App} />`, document.getElementById('app'));
