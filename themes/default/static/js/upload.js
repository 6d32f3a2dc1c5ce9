/* Portal — "Send Files": resumable multi-file upload (server protocol modelled on tus 1.0 core).
 *
 *   POST   /uploads        create (Upload-Length, Upload-Metadata) → 201, Location: /uploads/<id>
 *   PATCH  /uploads/<id>   append bytes at Upload-Offset → 204, Upload-Offset (+ Upload-Complete at the end)
 *   HEAD   /uploads/<id>   where to resume → Upload-Offset
 *   DELETE /uploads/<id>   cancel
 *
 * A classic script (works as a module too): <script src="/static/js/upload.js" defer>.
 * It does nothing on pages without <form id="send-files">. The server validates every file;
 * its JSON {"error": "..."} messages are shown next to the file they concern. */
(function () {
  'use strict';

  const form = document.getElementById('send-files');
  if (!form) return;

  const CHUNK = 8 * 1024 * 1024;  // 8 MiB; every non-final PATCH body must be a multiple of 65536
  const PARALLEL = 2;             // files uploading at the same time
  const MAX_DELAY = 30000;        // backoff ceiling (ms)
  const STALL_MS = 60000;         // a PATCH whose body makes no progress this long is treated as lost
  const STORE_KEY = 'portal.uploads';
  const STORE_TTL = 14 * 24 * 3600 * 1000;  // forget unfinished uploads after two weeks
  const TUS = '1.0.0';

  const csrf = form.dataset.csrf || '';
  const folderSelect = document.getElementById('folder');
  const picker = document.getElementById('files');
  const dropZone = document.getElementById('drop-zone');
  const startButton = document.getElementById('start-upload');
  const list = document.getElementById('upload-list');
  const statusBox = document.getElementById('upload-status');

  const items = [];   // one per file row; item.status: ready → queued → active → done | failed | cancelled
  let active = 0;
  let reloading = false;

  // ---------------------------------------------------------------- helpers

  function announce(text) {
    // Re-setting identical text makes some screen readers repeat it; only announce changes.
    if (statusBox && statusBox.textContent !== text) statusBox.textContent = text;
  }

  function plural(n, word) { return n + ' ' + word + (n === 1 ? '' : 's'); }

  function formatSize(bytes) {
    if (bytes < 1024) return plural(bytes, 'byte');
    const units = ['bytes', 'KB', 'MB', 'GB', 'TB'];
    let i = 0;
    let n = bytes;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? n : n.toFixed(n < 10 ? 1 : 0)) + ' ' + units[i];
  }

  // base64 of the UTF-8 bytes (btoa alone only takes Latin-1).
  function b64(text) {
    let bin = '';
    for (const byte of new TextEncoder().encode(text)) bin += String.fromCharCode(byte);
    return btoa(bin);
  }

  // tus Upload-Metadata: "key base64,key base64". A key with an empty value is sent bare
  // ("type"), as tus allows — a trailing "type " would be trimmed by the browser anyway.
  function metadata(item) {
    return [['filename', item.file.name], ['folder', item.folder], ['type', item.file.type]]
      .map(([key, value]) => (value ? key + ' ' + b64(value) : key))
      .join(',');
  }

  // An error for the user; `retry` marks the ones worth retrying (network, 409, 5xx, lost upload).
  class UploadError extends Error {
    constructor(message, retry, status) {
      super(message);
      this.retry = retry;
      this.status = status || 0;
    }
  }
  const LOST = 'Connection lost.';
  // The server answers a request without a valid session with a redirect to the sign-in page,
  // which fetch/XHR follow silently; the upload itself can resume after signing in again.
  const signedOut = () => new UploadError('Your session has ended. Sign in again, then choose the file again to continue.', false);
  const unexpected = () => new UploadError('The server sent an unexpected reply.', false);
  const cancelled = () => new UploadError('Cancelled', false, -1);

  // A JSON {"error"} is the server's considered answer and final — except 409 (offset mismatch:
  // resync) and 503. Other 5xx without one (crash, proxy page) are treated as transient.
  function serverError(status, body) {
    let message = '';
    try { message = JSON.parse(body).error || ''; } catch (_) { /* not JSON (proxy page, HEAD) */ }
    const retry = status === 409 || status === 503 || (status >= 500 && !message);
    return new UploadError(message || 'The file could not be sent (error ' + status + ').', retry, status);
  }

  // fetch() that reports network failures as retryable UploadErrors.
  async function request(url, init) {
    let res;
    try {
      res = await fetch(url, Object.assign({ credentials: 'same-origin', cache: 'no-store' }, init));
    } catch (_) {
      throw new UploadError(LOST, true, 0);
    }
    if (res.redirected) throw signedOut();
    return res;
  }

  // Upload-Offset as a number, or null when absent or malformed.
  function offsetHeader(value) {
    const n = value === null ? NaN : Number(value);
    return Number.isSafeInteger(n) && n >= 0 ? n : null;
  }

  // ------------------------------------------- resume map in localStorage
  // key "name|size|lastModified|folder" → { url, at }, so picking the same file again after a
  // reload continues where the server left off. Storage may be unavailable (private mode): then
  // uploads still work, they just can't resume across reloads.

  function loadStore() {
    try { return JSON.parse(localStorage.getItem(STORE_KEY)) || {}; } catch (_) { return {}; }
  }
  function saveStore(map) {
    try { localStorage.setItem(STORE_KEY, JSON.stringify(map)); } catch (_) { /* full or disabled */ }
  }
  function recall(key) {
    const entry = loadStore()[key];
    return entry && Date.now() - entry.at < STORE_TTL ? entry.url : null;
  }
  function remember(key, url) {
    const map = loadStore();
    for (const k of Object.keys(map)) if (!(Date.now() - map[k].at < STORE_TTL)) delete map[k];
    map[key] = { url: url, at: Date.now() };
    saveStore(map);
  }
  function forget(key) {
    const map = loadStore();
    if (key in map) { delete map[key]; saveStore(map); }
  }

  // ------------------------------------------------------------- file rows

  function el(tag, className, text) {
    const node = document.createElement(tag);
    node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function addFiles(files) {
    const added = Array.from(files || []);
    for (const file of added) {
      const li = el('li', 'upload-row');
      const item = {
        file: file, li: li, status: 'ready', folder: '', key: '', url: null,
        offset: 0, complete: false, failures: 0, xhr: null, wake: null,
        bar: el('progress', 'upload-bar'), pct: el('span', 'upload-pct', '0%'),
        state: el('span', 'upload-state', 'Ready to send'),
        cancel: el('button', 'secondary upload-cancel', 'Cancel'),
      };
      item.bar.max = Math.max(file.size, 1);
      item.bar.value = 0;
      item.bar.setAttribute('aria-label', 'Progress for ' + file.name);
      item.cancel.type = 'button';
      item.cancel.setAttribute('aria-label', 'Cancel ' + file.name);
      item.cancel.addEventListener('click', () => cancel(item));
      li.dataset.state = 'ready';
      li.append(el('span', 'upload-name', file.name), el('span', 'upload-size', formatSize(file.size)),
        item.bar, item.pct, item.state, item.cancel);
      list.append(li);
      items.push(item);
    }
    if (added.length) announce(plural(added.length, 'file') + ' ready. Press Send Files to send.');
  }

  function setState(item, text, state) {
    item.state.textContent = text;
    item.li.dataset.state = state;  // styled in documents.css
  }

  function setProgress(item, bytes) {
    item.bar.value = Math.min(bytes, item.file.size);
    const pct = item.file.size ? Math.floor((bytes / item.file.size) * 100) : 0;
    item.pct.textContent = Math.min(pct, 100) + '%';
  }

  // --------------------------------------------------------- the protocol

  async function create(item) {
    const res = await request('/uploads', {
      method: 'POST',
      headers: {
        'X-CSRF-Token': csrf, 'Tus-Resumable': TUS,
        'Upload-Length': String(item.file.size), 'Upload-Metadata': metadata(item),
      },
    });
    if (!res.ok) throw serverError(res.status, await res.text());
    const location = res.headers.get('Location');
    if (res.status !== 201 || !location) throw unexpected();
    const url = new URL(location, window.location.href);
    item.url = url.pathname + url.search;
    item.offset = 0;
    item.complete = res.headers.has('Upload-Complete');  // the server may report it finished already
    // Cancelled while the POST was in flight: drop the upload the server just made.
    if (item.status === 'cancelled') { discard(item); throw cancelled(); }
    remember(item.key, item.url);
  }

  // Asks the server how much it has. Returns false if the upload is gone (expired, finished
  // long ago, or not this user's), so the caller starts afresh.
  async function head(item) {
    const res = await request(item.url, { method: 'HEAD', headers: { 'Tus-Resumable': TUS } });
    if (res.status === 403 || res.status === 404 || res.status === 410) return false;
    if (!res.ok) throw serverError(res.status, '');
    const offset = offsetHeader(res.headers.get('Upload-Offset'));
    if (offset === null || offset > item.file.size) throw unexpected();
    item.offset = offset;
    item.complete = res.headers.has('Upload-Complete');
    setProgress(item, offset);
    return true;
  }

  // One PATCH of up to CHUNK bytes. XHR rather than fetch: fetch has no upload progress.
  function patch(item) {
    return new Promise((resolve, reject) => {
      const start = item.offset;
      const xhr = new XMLHttpRequest();
      let stall = 0;
      const watch = () => { clearTimeout(stall); stall = setTimeout(() => xhr.abort(), STALL_MS); };
      const lost = () => { clearTimeout(stall); item.xhr = null; reject(new UploadError(LOST, true, 0)); };
      xhr.open('PATCH', item.url);
      xhr.setRequestHeader('X-CSRF-Token', csrf);
      xhr.setRequestHeader('Tus-Resumable', TUS);
      xhr.setRequestHeader('Content-Type', 'application/offset+octet-stream');
      xhr.setRequestHeader('Upload-Offset', String(start));
      xhr.upload.onprogress = (e) => { watch(); setProgress(item, start + e.loaded); };
      // Once the body is out, the server may take a while to finish the file: stop the watchdog.
      xhr.upload.onload = () => clearTimeout(stall);
      xhr.onerror = lost;
      xhr.onabort = lost;  // stalled, or cancelled (run() tells the two apart)
      xhr.onload = () => {
        clearTimeout(stall);
        item.xhr = null;
        if (xhr.responseURL && new URL(xhr.responseURL).pathname !== new URL(item.url, window.location.href).pathname) {
          return reject(signedOut());  // redirected to the sign-in page
        }
        if (xhr.status < 200 || xhr.status >= 300) {
          const err = serverError(xhr.status, xhr.responseText);
          // 404/410: the server dropped this upload; the HEAD that follows confirms it and we start over.
          if (xhr.status === 404 || xhr.status === 410) err.retry = true;
          return reject(err);
        }
        const offset = offsetHeader(xhr.getResponseHeader('Upload-Offset'));
        if (offset === null) return reject(unexpected());
        if (offset < start || offset > item.file.size) {
          return reject(new UploadError(LOST, true, 0));  // confused: ask HEAD where we are
        }
        item.offset = offset;
        item.complete = xhr.getResponseHeader('Upload-Complete') !== null || offset === item.file.size;
        setProgress(item, offset);
        resolve();
      };
      item.xhr = xhr;
      const body = item.file.slice(start, Math.min(start + CHUNK, item.file.size));
      xhr.send(body);
      if (body.size) watch();  // an empty body fires no upload events
    });
  }

  function sleep(item, ms) {
    return new Promise((resolve) => {
      const done = () => { clearTimeout(timer); item.wake = null; resolve(); };
      const timer = setTimeout(done, ms);
      item.wake = done;  // cancel() and the 'online' event cut the wait short
    });
  }

  // Waits 1 s, 2 s, 4 s … 30 s, growing with each failure since the last PATCH that worked.
  async function backoff(item, err) {
    if (err.status === 0) {
      // A file deleted or changed on disk after it was picked fails like a network error;
      // retrying that forever would never help.
      try { await item.file.slice(0, 1).arrayBuffer(); } catch (_) {
        throw new UploadError('This file can no longer be read. Choose it again.', false);
      }
    }
    const delay = Math.min(1000 * 2 ** item.failures, MAX_DELAY);
    item.failures++;
    const resuming = err.status === 409 || err.status === 404 || err.status === 410;
    setState(item, resuming ? 'Resuming…' : 'Connection lost — retrying…', 'retrying');
    if (!resuming) announce('Connection lost — retrying…');
    await sleep(item, delay);
    if (item.status === 'cancelled') throw cancelled();
    setState(item, 'Sending…', 'active');
  }

  async function withRetry(item, step) {
    for (;;) {
      try { return await step(); } catch (err) {
        if (!err.retry || item.status === 'cancelled') throw err;
        await backoff(item, err);
      }
    }
  }

  // Resume a stored upload if the server still has it, otherwise create a new one.
  async function locate(item) {
    item.url = recall(item.key);
    if (item.url && await withRetry(item, () => head(item))) return;
    await fresh(item);
  }

  async function fresh(item) {
    forget(item.key);
    item.url = null;
    setProgress(item, 0);
    await withRetry(item, () => create(item));
  }

  async function run(item) {
    setState(item, 'Sending…', 'active');
    try {
      await locate(item);
      while (!item.complete) {
        if (item.status === 'cancelled') return;
        try {
          await patch(item);
          if (statusBox && statusBox.textContent === 'Connection lost — retrying…') announce('Connection restored — sending.');
          item.failures = 0;
        } catch (err) {
          if (item.status === 'cancelled') return;
          if (!err.retry) throw err;
          await backoff(item, err);
          // The server only keeps whole 64 KiB blocks, so continue from what it reports.
          if (!(await withRetry(item, () => head(item)))) await fresh(item);
        }
      }
      item.status = 'done';
      forget(item.key);
      item.bar.value = item.bar.max;
      item.pct.textContent = '100%';
      setState(item, 'Sent', 'done');
      item.cancel.hidden = true;
    } catch (err) {
      if (item.status === 'cancelled') return;
      item.status = 'failed';
      setState(item, err.message, 'failed');
      item.cancel.hidden = true;
      announce(item.file.name + ': ' + err.message);
    }
  }

  function discard(item) {
    forget(item.key);
    if (!item.url) return;
    request(item.url, { method: 'DELETE', headers: { 'X-CSRF-Token': csrf, 'Tus-Resumable': TUS } })
      .catch(() => { /* the server deletes abandoned uploads itself */ });
  }

  function cancel(item) {
    if (item.status === 'done' || item.status === 'failed' || item.status === 'cancelled') return;
    const started = item.status === 'active';
    item.status = 'cancelled';
    if (item.xhr) item.xhr.abort();
    if (item.wake) item.wake();
    if (started) discard(item);
    setState(item, 'Cancelled', 'cancelled');
    if (document.activeElement === item.cancel && picker) picker.focus();
    item.cancel.hidden = true;
    announce('Cancelled ' + item.file.name + '.');
    checkFinished();
  }

  // ------------------------------------------------------------ scheduling

  function pump() {
    while (active < PARALLEL) {
      const next = items.find((i) => i.status === 'queued');
      if (!next) return;
      next.status = 'active';
      active++;
      run(next).finally(() => { active--; pump(); checkFinished(); });
    }
  }

  function checkFinished() {
    if (reloading) return;
    const started = items.filter((i) => i.status !== 'ready');
    if (!started.length || started.some((i) => i.status === 'queued' || i.status === 'active')) return;
    const sent = started.filter((i) => i.status === 'done').length;
    if (started.some((i) => i.status === 'failed')) {
      announce('Some files could not be sent. See the message next to each file.');
    } else if (!sent) {
      announce('Nothing was sent.');
    } else if (items.some((i) => i.status === 'ready')) {
      announce(plural(sent, 'file') + ' sent. Press Send Files to send the rest.');  // don't reload over them
    } else {
      announce('All files sent. The firm has been notified.');
      reloading = true;
      setTimeout(() => window.location.assign('/documents'), 2500);  // where the new files are listed
    }
  }

  function start() {
    const ready = items.filter((i) => i.status === 'ready');
    if (!ready.length) {
      announce('Choose one or more files first.');
      if (picker) picker.focus();
      return;
    }
    const folder = folderSelect ? folderSelect.value : '';
    for (const item of ready) {
      const f = item.file;
      item.folder = folder;
      item.key = [f.name, f.size, f.lastModified, folder].join('|');
      item.status = 'queued';
      setState(item, 'Waiting…', 'queued');
    }
    announce('Sending ' + plural(ready.length, 'file') + '…');
    pump();
  }

  // ---------------------------------------------------------------- wiring

  form.addEventListener('submit', (e) => { e.preventDefault(); start(); });
  if (startButton) startButton.addEventListener('click', (e) => { e.preventDefault(); start(); });

  if (picker) {
    picker.addEventListener('change', () => {
      addFiles(picker.files);
      picker.value = '';  // so choosing the same file again fires 'change'
    });
  }

  const hasFiles = (e) => !!e.dataTransfer && Array.from(e.dataTransfer.types || []).includes('Files');
  if (dropZone) {
    let depth = 0;  // dragenter/leave also fire for child elements; count to know when we really left
    dropZone.addEventListener('dragenter', (e) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      depth++;
      dropZone.classList.add('dragover');
    });
    dropZone.addEventListener('dragover', (e) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      e.dataTransfer.dropEffect = 'copy';
    });
    dropZone.addEventListener('dragleave', () => {
      depth = Math.max(0, depth - 1);
      if (!depth) dropZone.classList.remove('dragover');
    });
    dropZone.addEventListener('drop', (e) => {
      e.preventDefault();
      depth = 0;
      dropZone.classList.remove('dragover');
      // A dropped folder arrives as a File that cannot be read; leave those out.
      const entries = Array.from(e.dataTransfer.items || []).filter((it) => it.kind === 'file');
      const files = Array.from(e.dataTransfer.files).filter((_, i) => {
        const entry = entries[i] && entries[i].webkitGetAsEntry ? entries[i].webkitGetAsEntry() : null;
        return !(entry && entry.isDirectory);
      });
      addFiles(files);
      if (files.length < e.dataTransfer.files.length) announce('Folders cannot be sent; drop the files inside them instead.');
    });
  }
  // A file dropped next to the zone would otherwise open in the tab and leave the page.
  window.addEventListener('dragover', (e) => {
    if (hasFiles(e) && !(dropZone && dropZone.contains(e.target))) { e.preventDefault(); e.dataTransfer.dropEffect = 'none'; }
  });
  window.addEventListener('drop', (e) => { if (hasFiles(e)) e.preventDefault(); });

  // Back online: retry now instead of at the end of the current backoff wait.
  window.addEventListener('online', () => items.forEach((i) => i.wake && i.wake()));

  window.addEventListener('beforeunload', (e) => {
    if (items.some((i) => i.status === 'active' || i.status === 'queued')) {
      e.preventDefault();
      e.returnValue = '';  // older browsers need this to show the prompt
    }
  });
})();
