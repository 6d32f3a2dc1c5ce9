/* Portal — documents page behaviour. Classic script: <script src="/static/js/documents.js" defer>.
 *
 * D4: a document's name (<a class="doc-name" href="PREVIEW" data-download="DOWNLOAD">) opens the
 *     preview on a click and downloads on a double-click.
 * D5: <button data-open-dialog="ID"> opens <dialog id="ID" class="message-dialog">; its
 *     .dialog-ok button closes it.
 * Also closes an open "More" menu (<details class="more">) on Escape or a click elsewhere. */
(function () {
  'use strict';

  // A double-click is two clicks, and the first would already leave for the preview. So a
  // mouse click waits briefly for a second one: one click → preview, two → download.
  // Keyboard activation (detail 0) and modified clicks (new tab, etc.) are left to the browser.
  const DOUBLE_CLICK_MS = 300;
  let pending = null;

  document.addEventListener('click', function (e) {
    const link = e.target.closest && e.target.closest('a.doc-name[data-download]');
    if (!link || e.defaultPrevented || e.button !== 0) return;
    if (e.ctrlKey || e.metaKey || e.shiftKey || e.altKey || e.detail === 0) return;
    e.preventDefault();
    clearTimeout(pending);
    if (e.detail >= 2) {
      pending = null;
      window.location.assign(link.dataset.download);
    } else {
      pending = setTimeout(function () { window.location.assign(link.href); }, DOUBLE_CLICK_MS);
    }
  });

  // Don't select the name's text when it is double-clicked.
  document.addEventListener('mousedown', function (e) {
    if (e.detail > 1 && e.target.closest && e.target.closest('a.doc-name[data-download]')) e.preventDefault();
  });

  // ---- message dialogs
  let opener = null;

  document.addEventListener('click', function (e) {
    if (!e.target.closest) return;
    const button = e.target.closest('[data-open-dialog]');
    if (button) {
      const dialog = document.getElementById(button.dataset.openDialog);
      if (dialog && dialog.classList.contains('message-dialog') && typeof dialog.showModal === 'function') {
        e.preventDefault();
        // Opened from a "More" menu: close the menu, and return focus to its summary later.
        const menu = button.closest('details.more');
        if (menu) menu.open = false;
        opener = menu ? menu.querySelector('summary') : button;
        if (!dialog.open) dialog.showModal();
      }
      return;
    }
    const ok = e.target.closest('.message-dialog .dialog-ok');
    if (ok) {
      e.preventDefault();
      ok.closest('dialog').close();
    }
  });

  // Return focus to the button that opened the dialog (OK or Escape), for keyboard users.
  document.querySelectorAll('dialog.message-dialog').forEach(function (dialog) {
    dialog.addEventListener('close', function () {
      if (opener && document.contains(opener)) opener.focus();
      opener = null;
    });
  });

  // ---- "More" menus
  function closeMenus(except) {
    document.querySelectorAll('details.more[open]').forEach(function (menu) {
      if (menu !== except) menu.open = false;
    });
  }

  document.addEventListener('click', function (e) {
    closeMenus(e.target.closest ? e.target.closest('details.more') : null);
  });

  document.addEventListener('keydown', function (e) {
    if (e.key !== 'Escape') return;
    const menu = e.target.closest && e.target.closest('details.more[open]');
    if (menu) {
      menu.open = false;
      menu.querySelector('summary').focus();
    }
  });
})();
