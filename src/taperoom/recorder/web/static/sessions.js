/* Session history: badges follow recording:status and transfer:status events
 * (app.js); the table is re-rendered from the server (keeping the filters)
 * when a session starts, finishes or its upload ends. */
(function () {
  'use strict';
  var T = window.Taperoom, live = T.live;
  var FINAL = {completed: true, failed: true, skipped: true};
  live.on('recording:started', function () { T.refreshSections(['sessions-section']); });
  live.on('recording:status', function (s) {
    if (s.status === 'completed' || s.status === 'failed' || s.status === 'processing') {
      T.refreshSections(['sessions-section']);
    }
  });
  live.on('transfer:status', function (d) {
    if (FINAL[d.transfer_status]) T.refreshSections(['sessions-section']);
  });
  // Filters apply as soon as they change.
  var filters = document.getElementById('session-filters');
  if (filters) {
    filters.querySelectorAll('select').forEach(function (sel) {
      sel.addEventListener('change', function () { filters.requestSubmit(); });
    });
  }
})();
