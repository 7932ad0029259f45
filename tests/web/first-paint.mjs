// The VM list's first paint against a running droverd (docs/WEB.md,
// "Figures"): a fresh tab opened at #/vms with a session already in it,
// timed from navigation start to the first row on screen, 5 runs.
//   DV_URL=... DV_TOKEN=... DV_WEB_NODE_MODULES=build/web/npm/node_modules \
//     node tests/web/first-paint.mjs
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const env = process.env;
const require = createRequire(`${env.DV_WEB_NODE_MODULES}/`);
const puppeteer = require('puppeteer-core');
const profile = mkdtempSync(path.join(tmpdir(), 'dv-chromium-'));
const browser = await puppeteer.launch({
    executablePath: env.DV_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    userDataDir: profile,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync'],
});
try {
    const times = [];
    for (let i = 0; i < 5; i++) {
        const page = await browser.newPage();
        await page.setViewport({ width: 1280, height: 720 });
        await page.evaluateOnNewDocument((t) => sessionStorage.setItem('drover.token', t), env.DV_TOKEN);
        await page.goto(`${env.DV_URL}/#/vms`);
        await page.waitForSelector('table.vms tbody tr');
        const ms = await page.evaluate(() => performance.now());
        const rows = await page.$$eval('table.vms tbody tr', (r) => r.length);
        times.push(Math.round(ms));
        console.log(`run ${i + 1}: ${Math.round(ms)} ms to the first of ${rows} rows`);
        await page.close();
    }
    times.sort((a, b) => a - b);
    console.log(`median ${times[2]} ms, max ${times[4]} ms`);
} finally {
    await browser.close();
    rmSync(profile, { recursive: true, force: true });
}
