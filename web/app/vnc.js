// The graphical console: noVNC (web/vendor/novnc, its ES-module sources)
// over the console WebSocket `?type=vnc`, opened with a single-use ticket
// like the serial console (docs/API.md, "Consoles").  Ctrl+Alt+Del, text
// pasted as typed keys, scaling to the page's width and reconnecting.
import { html, useState, useEffect, useRef } from './ui.js';
import { post } from './api.js';

// The keysym of a character (X11: Latin-1 is its code point, the rest
// 0x01000000 + the code point); newline and tab are keys of their own.
export function keysymOf(ch) {
    const c = ch.codePointAt(0);
    if (ch === '\n' || ch === '\r') return 0xff0d;
    if (ch === '\t') return 0xff09;
    if ((c >= 0x20 && c <= 0x7e) || (c >= 0xa0 && c <= 0xff)) return c;
    return 0x01000000 + c;
}

// Lost connections are retried this many times, a second apart; a
// disconnect asked for (closing, reconnecting) is not.
const RETRIES = 3;

export function GraphicalConsole({ vm }) {
    const box = useRef(null);
    const rfbRef = useRef(null);
    const [status, setStatus] = useState('connecting');
    const [scale, setScale] = useState(true);
    const [paste, setPaste] = useState('');
    const [typed, setTyped] = useState(null);
    const [attempt, setAttempt] = useState(0);

    useEffect(() => {
        let rfb = null;
        let gone = false;
        let retries = 0;
        let timer = null;
        const open = async () => {
            setStatus('connecting');
            try {
                const t0 = performance.now();
                window.droverVncStart = t0;
                const { default: RFB } = await import('../vendor/novnc/core/rfb.js');
                const { ticket } = await post(`/vms/${vm.id}/console-tickets`);
                if (gone) return;
                const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
                const url = `${scheme}://${location.host}/api/v1/vms/${vm.id}/console?type=vnc&ticket=${encodeURIComponent(ticket)}`;
                rfb = new RFB(box.current, url, { wsProtocols: ['binary'] });
                rfbRef.current = rfb;
                rfb.scaleViewport = scale;
                rfb.focusOnClick = true;
                rfb.addEventListener('connect', () => {
                    retries = 0;
                    window.droverVncConnectMs = performance.now() - t0;
                    window.droverVncConnects = (window.droverVncConnects || 0) + 1;
                    setStatus('connected');
                });
                rfb.addEventListener('disconnect', (ev) => {
                    // Ended: not to be disconnected again on leaving.
                    rfb = null;
                    rfbRef.current = null;
                    if (gone) return;
                    if (!ev.detail.clean && retries < RETRIES) {
                        retries += 1;
                        setStatus(`connection lost; reconnecting (${retries} of ${RETRIES})`);
                        timer = setTimeout(open, 1000);
                    } else {
                        setStatus('disconnected');
                    }
                });
                rfb.addEventListener('securityfailure', (ev) => setStatus(`refused: ${ev.detail.reason || ev.detail.status}`));
            } catch (e) {
                setStatus(`refused: ${e.message}`);
            }
        };
        open();
        return () => {
            gone = true;
            clearTimeout(timer);
            if (rfb) rfb.disconnect();
            rfbRef.current = null;
        };
    }, [vm.id, attempt]);

    useEffect(() => {
        if (rfbRef.current) rfbRef.current.scaleViewport = scale;
    }, [scale]);

    const cad = () => rfbRef.current && rfbRef.current.sendCtrlAltDel();
    const typeText = (ev) => {
        ev.preventDefault();
        const rfb = rfbRef.current;
        if (!rfb || !paste) return;
        let n = 0;
        for (const ch of paste) {
            rfb.sendKey(keysymOf(ch), null);
            n += 1;
        }
        window.droverVncTyped = (window.droverVncTyped || 0) + n;
        setTyped(n);
        setPaste('');
        rfb.focus();
    };
    const connected = status === 'connected';
    return html`<section aria-labelledby="vnc-title" class="vnc">
        <h2 id="vnc-title">Graphical console <span class="muted" data-vnc-status=${status}>${status}</span></h2>
        <div class="actions" role="group" aria-label="Graphical console">
            <button data-action="vnc-cad" disabled=${!connected} onClick=${cad}>Send Ctrl+Alt+Del</button>
            <label class="inline"><input type="checkbox" name="vnc-scale" checked=${scale} onChange=${(e) => setScale(e.target.checked)} /> Scale to fit</label>
            <button data-action="vnc-reconnect" onClick=${() => setAttempt((n) => n + 1)}>Reconnect</button>
        </div>
        <div class=${`screen${scale ? ' scaled' : ''}`} ref=${box} role="region" aria-label="Graphical console screen"></div>
        <form class="paste" onSubmit=${typeText}>
            <label for="vnc-paste">Paste as typed keys</label>
            <input id="vnc-paste" name="vnc-paste" value=${paste} onInput=${(e) => setPaste(e.target.value)} autocomplete="off" />
            <button type="submit" data-action="vnc-type" disabled=${!connected}>Type</button>
            ${typed !== null && html`<span class="muted" data-vnc-typed=${typed}>${typed} keys typed</span>`}
        </form>
    </section>`;
}
