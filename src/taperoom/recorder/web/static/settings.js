/* Settings: refresh the system health figures from GET /api/system/status every 5 s. */
(function () {
  'use strict';
  var T = window.Taperoom;
  var stamp = document.getElementById('health-updated');
  var note = document.getElementById('health-status');
  function tick() {
    if (document.hidden) return;
    T.refreshHealth().then(function (s) {
      stamp.textContent = 'updated ' + new Date().toTimeString().slice(0, 8);
      if (note && s) {
        note.textContent = (s.status ? 'Status: ' + s.status : '') +
          (s.message ? ' — ' + s.message : '') +
          (s.uptime_seconds !== undefined ? ' · up ' + T.duration(s.uptime_seconds) : '') +
          (s.active_recordings !== undefined ? ' · ' + s.active_recordings + ' recording now' : '');
      }
    }).catch(function (err) { stamp.textContent = 'status unavailable: ' + err.message; });
  }
  setInterval(tick, 5000);
})();
