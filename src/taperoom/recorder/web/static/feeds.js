/* Podcast feed links: "Copy link" copies the link of its input (data-target). */
(function () {
  'use strict';
  var T = window.Taperoom = window.Taperoom || {};

  function copied() { if (T.flash) T.flash('Link copied'); }

  document.addEventListener('click', function (ev) {
    var el = ev.target.closest('[data-action="copy"]');
    if (!el) return;
    ev.preventDefault();
    var input = document.getElementById(el.dataset.target);
    if (!input) return;
    input.select();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(copied, function () {
        if (document.execCommand('copy')) copied();
      });
    } else if (document.execCommand('copy')) {
      copied();
    } else if (T.flash) {
      T.flash('Select the link and copy it', 'error');
    }
  });
})();
