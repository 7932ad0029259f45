// xterm.js 5's DOM renderer writes its colours and row metrics into
// <style> elements it makes with document.createElement('style') and
// fills through textContent; the console's CSP (no 'unsafe-inline')
// refuses inline style elements, even empty ones.  A <style> asked for by
// script here is an inert <template> whose textContent goes to a
// constructable stylesheet (CSSOM, which the policy allows); removing the
// element drops the sheet.  xterm.js only sets textContent and calls
// remove(); the app itself makes no <style> (docs/WEB.md).
const make = Document.prototype.createElement;

function adopt(el) {
    const sheet = new CSSStyleSheet();
    let text = '';
    document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
    Object.defineProperty(el, 'textContent', {
        configurable: true,
        get: () => text,
        set: (v) => {
            text = String(v);
            sheet.replaceSync(text);
        },
    });
    const remove = el.remove.bind(el);
    el.remove = () => {
        document.adoptedStyleSheets = document.adoptedStyleSheets.filter((s) => s !== sheet);
        remove();
    };
}

export function installStyleShim() {
    document.createElement = function createElement(tag, options) {
        if (String(tag).toLowerCase() !== 'style') return make.call(this, tag, options);
        const el = make.call(this, 'template');
        adopt(el);
        return el;
    };
}
