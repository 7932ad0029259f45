// Log in: local users and directory users alike (POST /api/v1/session
// decides which); a refusal is shown beside the field it names.  The
// inputs are not `required`: the API's own rule and words are shown.
import { html, useState, Field, ErrorNote } from '../ui.js';
import { login } from '../session.js';

export function LoginPage({ next, onDone }) {
    const [user, setUser] = useState('');
    const [password, setPassword] = useState('');
    const [error, setError] = useState(null);
    const [busy, setBusy] = useState(false);

    const submit = async (ev) => {
        ev.preventDefault();
        setBusy(true);
        setError(null);
        try {
            await login(user, password);
            setPassword('');
            location.hash = `#${next && next.startsWith('/') && !next.startsWith('/login') ? next : '/'}`;
            onDone();
        } catch (e) {
            setError(e);
        } finally {
            setBusy(false);
        }
    };

    return html`<main class="login" id="main">
        <form class="card" onSubmit=${submit} aria-labelledby="login-title">
            <h1 id="login-title">Drover</h1>
            <p class="muted">Log in with a Drover or directory account.</p>
            <${Field} label="User" name="user" error=${error}>
                ${(id, err) => html`<input id=${id} name="user" autocomplete="username"
                    value=${user} onInput=${(e) => setUser(e.target.value)} aria-describedby=${err} />`}
            <//>
            <${Field} label="Password" name="password" error=${error}>
                ${(id, err) => html`<input id=${id} name="password" type="password" autocomplete="current-password"
                    value=${password} onInput=${(e) => setPassword(e.target.value)} aria-describedby=${err} />`}
            <//>
            <${ErrorNote} error=${error} />
            <button type="submit" class="primary" disabled=${busy}>Log in</button>
        </form>
    </main>`;
}
