// Task page (T2): every change is saved to the server within a second of the
// last keystroke, without leaving the page. Each section's form is the same
// plain POST the page uses without JavaScript; the server's answer says what was
// not saved (and why), which questions are shown now, and the progress.
(function () {
  'use strict';
  var DELAY = 700;
  var RETRY = 3000;

  function fieldsets() {
    return Array.prototype.slice.call(document.querySelectorAll('fieldset[data-field]'));
  }

  function showVisibility(data) {
    var visible = data.visible || [];
    var hidden = data.hidden || [];
    fieldsets().forEach(function (fs) {
      var id = fs.getAttribute('data-field');
      if (visible.indexOf(id) >= 0) { fs.hidden = false; fs.disabled = false; }
      else if (hidden.indexOf(id) >= 0) { fs.hidden = true; fs.disabled = true; }
    });
    document.querySelectorAll('.task-section').forEach(function (section) {
      var shown = section.querySelectorAll('fieldset[data-field]:not([hidden])').length;
      var any = section.querySelectorAll('fieldset[data-field]').length;
      section.hidden = any > 0 && shown === 0;
    });
  }

  function showErrors(data) {
    var errors = {};
    (data.errors || []).forEach(function (e) { errors[e.field] = e.message; });
    fieldsets().forEach(function (fs) {
      var id = fs.getAttribute('data-field');
      var p = fs.querySelector('.field-error');
      if (!p) { return; }
      var message = errors[id];
      p.textContent = message || '';
      p.hidden = !message;
      fs.querySelectorAll('input, textarea').forEach(function (input) {
        if (message) { input.setAttribute('aria-invalid', 'true'); } else { input.removeAttribute('aria-invalid'); }
      });
    });
  }

  function showProgress(data) {
    var bar = document.getElementById('task-progress');
    var text = document.getElementById('task-progress-text');
    if (bar && data.total) { bar.max = data.total; bar.value = data.done; }
    if (text && data.total) { text.textContent = data.done + ' of ' + data.total + ' done'; }
  }

  function autosave(form) {
    var status = form.querySelector('.save-state');
    var timer = null;
    var busy = false;
    var again = false;

    function say(text) { if (status) { status.textContent = text; } }

    function save() {
      if (busy) { again = true; return; }
      busy = true;
      var body = new URLSearchParams(new FormData(form));
      fetch(form.action, {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'Accept': 'application/json', 'Content-Type': 'application/x-www-form-urlencoded' },
        body: body
      }).then(function (r) {
        if (r.status === 403 || r.status === 404) { return { stop: true }; }
        return r.json().then(function (data) { return { ok: r.ok, data: data }; });
      }).then(function (res) {
        busy = false;
        if (res.stop) {
          // The session or the form expired: retrying cannot help.
          say('Not saved: this page has expired. Reload it (or sign in again) and try again.');
          return;
        }
        var data = res.data || {};
        showVisibility(data);
        showErrors(data);
        showProgress(data);
        if (data.error) { say(data.error); }
        else if (data.failure) { say('Saved. ' + data.failure); }
        else { say(data.saved ? 'Saved' : 'Saved, except the answers marked'); }
        if (again) { again = false; save(); }
      }).catch(function () {
        busy = false;
        say('Not saved yet. Trying again…');
        setTimeout(save, RETRY);
      });
    }

    function changed() {
      say('Saving…');
      clearTimeout(timer);
      timer = setTimeout(save, DELAY);
    }

    Array.prototype.forEach.call(form.elements, function (el) {
      if (el.type === 'hidden' || el.type === 'submit') { return; }
      el.addEventListener('input', changed);
      el.addEventListener('change', changed);
    });
    form.addEventListener('submit', function (e) {
      e.preventDefault();
      clearTimeout(timer);
      say('Saving…');
      save();
    });
  }

  document.querySelectorAll('form.autosave').forEach(autosave);
})();
