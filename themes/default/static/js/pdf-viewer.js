/* Portal — PDF preview with pdf.js (vendored in /static/vendor/pdfjs, see VERSION there).
 * Loaded as <script type="module" src="/static/js/pdf-viewer.js"> (templates/preview.html):
 *
 *   toolbar: #prev-page #next-page <input #page-number> <span #page-count> #zoom-out #zoom-in
 *   <p id="pdf-error" role="alert" hidden></p>
 *   <div class="pdf-layout">
 *     <nav id="outline" aria-label="Bookmarks"></nav>
 *     <div id="pdf-viewer" data-src="/documents/ID/content"><canvas id="pdf-canvas"></canvas></div>
 *   </div>
 *
 * At zoom 100% the page fills the width of the canvas's parent. With no bookmarks the
 * outline's parent gets class "no-outline" (documents.css then puts the note under the page). */
import { getDocument, GlobalWorkerOptions } from '/static/vendor/pdfjs/pdf.min.mjs';

GlobalWorkerOptions.workerSrc = '/static/vendor/pdfjs/pdf.worker.min.mjs';

const ZOOMS = [0.5, 0.75, 1, 1.25, 1.5, 2, 3];  // relative to "fit width"
const MAX_PIXELS = 4096 * 4096;                  // keep canvases within phone browsers' limits

const $ = (id) => document.getElementById(id);
const viewer = $('pdf-viewer');
if (viewer) start(viewer);

function start(viewer) {
  const canvas = $('pdf-canvas');
  const stage = canvas.parentElement;
  const pageInput = $('page-number');
  const pageCount = $('page-count');
  const prev = $('prev-page');
  const next = $('next-page');
  const zoomOut = $('zoom-out');
  const zoomIn = $('zoom-in');
  const outline = $('outline');
  const errorBox = $('pdf-error');

  let pdf = null;
  let pageNum = 1;
  let zoomIndex = ZOOMS.indexOf(1);
  let rendering = false;   // a render is in progress on the canvas
  let again = false;       // something changed meanwhile: render once more when it ends
  let task = null;
  let lastWidth = 0;

  const controls = [prev, next, pageInput, zoomOut, zoomIn].filter(Boolean);
  controls.forEach((c) => { c.disabled = true; });

  function showError(message) {
    if (errorBox) { errorBox.textContent = message; errorBox.hidden = false; }
    if (pageCount) pageCount.textContent = '–';
  }

  function stageWidth() {
    const style = getComputedStyle(stage);
    return stage.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  }

  // pdf.js refuses two renders on one canvas at once, so changes during a render cancel it
  // and ask for one more pass instead of starting a second render.
  function requestRender() {
    if (!pdf) return;
    if (rendering) { again = true; if (task) task.cancel(); return; }
    draw();
  }

  async function draw() {
    rendering = true;
    try {
      const num = pageNum;
      const page = await pdf.getPage(num);
      const fit = Math.max(stageWidth(), 100) / page.getViewport({ scale: 1 }).width;
      const viewport = page.getViewport({ scale: fit * ZOOMS[zoomIndex] });
      // Draw at device pixels so text is sharp on high-density screens, within the size cap.
      let ratio = window.devicePixelRatio || 1;
      ratio = Math.min(ratio, Math.sqrt(MAX_PIXELS / (viewport.width * viewport.height)));
      canvas.width = Math.floor(viewport.width * ratio);
      canvas.height = Math.floor(viewport.height * ratio);
      canvas.style.width = Math.floor(viewport.width) + 'px';   // CSSOM, allowed by the CSP
      canvas.setAttribute('role', 'img');
      canvas.setAttribute('aria-label', `Page ${num} of ${pdf.numPages}`);
      viewer.classList.toggle('zoomed', ZOOMS[zoomIndex] > 1);
      if (!again) {
        task = page.render({ canvas, viewport, transform: ratio === 1 ? null : [ratio, 0, 0, ratio, 0, 0] });
        await task.promise;
      }
    } catch (err) {
      if (!err || err.name !== 'RenderingCancelledException') showError('This page could not be shown.');
    } finally {
      task = null;
      rendering = false;
      if (again) { again = false; draw(); }
    }
  }

  function updateControls() {
    if (pageInput) pageInput.value = String(pageNum);
    if (prev) prev.disabled = pageNum <= 1;
    if (next) next.disabled = pageNum >= pdf.numPages;
    if (zoomOut) zoomOut.disabled = zoomIndex === 0;
    if (zoomIn) zoomIn.disabled = zoomIndex === ZOOMS.length - 1;
  }

  function goTo(n) {
    if (!pdf || !Number.isFinite(n)) return;
    const target = Math.min(Math.max(1, Math.round(n)), pdf.numPages);
    const changed = target !== pageNum;
    pageNum = target;
    updateControls();
    if (!changed) return;
    requestRender();
    // Start the new page at its top (the toolbar is sticky; see scroll-margin in documents.css).
    stage.scrollTop = 0;
    if (canvas.getBoundingClientRect().top < 0) canvas.scrollIntoView({ block: 'start' });
  }

  function zoom(step) {
    zoomIndex = Math.min(Math.max(0, zoomIndex + step), ZOOMS.length - 1);
    updateControls();
    requestRender();
  }

  // Bookmarks: a destination is a name (looked up) or an array whose first item is a page
  // reference (or, rarely, a page index).
  async function pageOf(dest) {
    const explicit = typeof dest === 'string' ? await pdf.getDestination(dest) : dest;
    if (!Array.isArray(explicit)) return null;
    const ref = explicit[0];
    if (Number.isInteger(ref)) return ref + 1;
    return ref && typeof ref === 'object' ? (await pdf.getPageIndex(ref)) + 1 : null;
  }

  // Destinations are resolved on click: resolving hundreds up front would delay the panel.
  function buildList(entries) {
    const ul = document.createElement('ul');
    for (const entry of entries) {
      const li = document.createElement('li');
      const title = (entry.title || '').trim() || 'Untitled';
      let node;
      if (entry.dest) {
        node = document.createElement('a');
        node.href = '#';
        node.addEventListener('click', (e) => {
          e.preventDefault();
          pageOf(entry.dest).then((page) => {
            if (!page) return;
            goTo(page);
            canvas.focus({ preventScroll: true });
          }, () => { /* broken bookmark: ignore */ });
        });
      } else if (entry.url && /^https?:/i.test(entry.url)) {
        node = document.createElement('a');
        node.href = entry.url;
        node.rel = 'noopener noreferrer';
        node.target = '_blank';
      } else {
        node = document.createElement('span');
      }
      node.textContent = title;
      li.append(node);
      if (entry.items && entry.items.length) li.append(buildList(entry.items));
      ul.append(li);
    }
    return ul;
  }

  async function showOutline() {
    if (!outline) return;
    let entries = null;
    try { entries = await pdf.getOutline(); } catch (_) { /* treated as none */ }
    outline.replaceChildren();
    outline.parentElement.classList.toggle('no-outline', !(entries && entries.length));
    if (entries && entries.length) {
      outline.append(buildList(entries));
    } else {
      const p = document.createElement('p');
      p.className = 'small';
      p.textContent = 'This document has no bookmarks';
      outline.append(p);
    }
  }

  // ---- wiring
  if (prev) prev.addEventListener('click', () => goTo(pageNum - 1));
  if (next) next.addEventListener('click', () => goTo(pageNum + 1));
  if (pageInput) pageInput.addEventListener('change', () => goTo(Number(pageInput.value)));
  if (zoomOut) zoomOut.addEventListener('click', () => zoom(-1));
  if (zoomIn) zoomIn.addEventListener('click', () => zoom(1));
  canvas.tabIndex = 0;  // so bookmark clicks can move focus to the page

  document.addEventListener('keydown', (e) => {
    if (e.altKey || e.ctrlKey || e.metaKey || e.shiftKey) return;
    const t = e.target;
    if (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName)) return;  // arrows edit text there
    if (e.key === 'ArrowLeft') { goTo(pageNum - 1); e.preventDefault(); }
    if (e.key === 'ArrowRight') { goTo(pageNum + 1); e.preventDefault(); }
  });

  // Re-fit when the stage's width changes (window resize, phone rotation, browser zoom).
  const onResize = () => {
    const width = stageWidth();
    if (Math.abs(width - lastWidth) < 1) return;  // height changes from our own redraws
    lastWidth = width;
    requestRender();
  };
  if ('ResizeObserver' in window) new ResizeObserver(onResize).observe(stage);
  else window.addEventListener('resize', onResize);

  // ---- load
  const url = viewer.dataset.src;
  if (pageCount) pageCount.textContent = '…';
  // useWasm: false — the CSP has no 'wasm-unsafe-eval' and no wasm files are vendored, so
  // pdf.js goes straight to its built-in JS decoders (CCITT fax and JBIG2 scans) instead of
  // trying WebAssembly first.
  const params = { url, isEvalSupported: false, disableAutoFetch: false, useWasm: false };
  getDocument(params).promise.then((doc) => {
    pdf = doc;
    if (pageCount) pageCount.textContent = String(pdf.numPages);
    if (pageInput) pageInput.max = String(pdf.numPages);
    controls.forEach((c) => { c.disabled = false; });
    const fromHash = /^#page=(\d+)$/.exec(window.location.hash);
    pageNum = fromHash ? Math.min(Math.max(1, Number(fromHash[1])), pdf.numPages) : 1;
    updateControls();
    // The outline decides the layout (and so the page width): place it before the first render.
    showOutline().finally(() => {
      lastWidth = stageWidth();
      requestRender();
    });
  }, (err) => {
    const name = err && err.name;
    if (name === 'PasswordException') {
      showError('This PDF is password-protected, so it cannot be previewed here. Download it to open it.');
    } else if (name === 'InvalidPDFException') {
      showError('This file could not be read as a PDF. You can still download it.');
    } else if (err && err.status) {
      showError(`The document could not be loaded (error ${err.status}). Please reload the page.`);
    } else {
      showError('The preview could not be loaded. You can still download the document.');
    }
  });
}
