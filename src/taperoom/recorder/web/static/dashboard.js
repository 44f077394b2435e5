/* Dashboard: live sessions with progress bars, updated from the WebSocket
 * (recording:started / progress / status) or, while it is down, from polling
 * GET /api/sessions/active. Finished sessions leave the live table and the
 * recent-sessions table and summary are re-rendered from the server. */
(function () {
  'use strict';
  var T = window.Taperoom, live = T.live;
  var FINAL = {completed: true, failed: true};
  var removeTimers = {};
  T.FINISHED_ROW_MS = T.FINISHED_ROW_MS || 2500;  // a finished row lingers this long

  function tbody() { return document.querySelector('#live-sessions tbody'); }
  function rowFor(id) { return tbody().querySelector('tr[data-session-id="' + id + '"]'); }
  function set(tr, field, text) {
    var el = tr.querySelector('[data-field="' + field + '"]');
    if (el) el.textContent = text;
  }
  function updateEmpty() {
    var n = tbody().querySelectorAll('tr[data-session-id]').length;
    document.getElementById('live-empty').hidden = n > 0;
    var stat = document.querySelector('[data-stat="active"]');
    if (stat) stat.textContent = String(n);
  }

  function createRow(s) {
    var tpl = document.getElementById('live-row-template');
    var tr = tpl.content.querySelector('tr').cloneNode(true);
    tr.dataset.sessionId = String(s.id);
    tr.querySelector('[role="progressbar"]').setAttribute('aria-label', 'Progress of session ' + s.id);
    var stop = tr.querySelector('[data-action="stop"]');
    if (stop) stop.dataset.session = String(s.id);
    tbody().appendChild(tr);
    updateEmpty();
    return tr;
  }

  function fillSession(tr, s) {
    if (s.station_name !== undefined) set(tr, 'station', s.station_name || ('#' + s.id));
    if (s.start_time) set(tr, 'start', T.time(s.start_time, true));
    if (s.planned_duration_seconds) {
      tr.dataset.planned = String(s.planned_duration_seconds);
      set(tr, 'planned', T.duration(s.planned_duration_seconds));
    }
    if (s.status) {
      tr.dataset.status = s.status;
      var cell = tr.querySelector('[data-field="status"]');
      cell.innerHTML = T.badgeHtml(s.status, 'status');
      if (s.status !== 'recording') {
        tr.querySelectorAll('[data-action="stop"]').forEach(function (b) { b.remove(); });
        if (s.status !== 'processing') set(tr, 'connection', '—');
        else tr.querySelector('[data-field="connection"]').innerHTML = '<span class="muted">processing…</span>';
      }
    }
    if (s.progress) fillProgress(tr, s.progress);
  }

  function fillProgress(tr, p) {
    var pct = Math.max(0, Math.min(100, Number(p.percent) || 0));
    var bar = tr.querySelector('[role="progressbar"]');
    bar.setAttribute('aria-valuenow', pct.toFixed(1));
    bar.querySelector('.bar-fill').style.width = pct + '%';
    set(tr, 'percent', pct.toFixed(1));
    set(tr, 'elapsed', T.duration(p.elapsed_seconds || 0));
    set(tr, 'audio', T.duration(p.audio_seconds || 0));
    set(tr, 'bytes', T.bytes(p.bytes_written || 0));
    set(tr, 'reconnects', String(p.reconnects || 0));
    set(tr, 'title', p.title || '');
    var conn = tr.querySelector('[data-field="connection"]');
    if (tr.dataset.status === 'recording' || !tr.dataset.status) {
      conn.innerHTML = p.connected ? '<span class="conn conn-up">connected</span>'
        : '<span class="conn conn-down">reconnecting…</span>';
    }
    tr.dataset.updated = String(Date.now());
  }

  function finish(tr) {
    var id = tr.dataset.sessionId;
    clearTimeout(removeTimers[id]);
    removeTimers[id] = setTimeout(function () {
      tr.remove();
      updateEmpty();
    }, T.FINISHED_ROW_MS);
  }

  function applyActive(list) {
    var seen = {};
    list.forEach(function (s) {
      seen[s.id] = true;
      var tr = rowFor(s.id) || createRow(s);
      fillSession(tr, s);
    });
    tbody().querySelectorAll('tr[data-session-id]').forEach(function (tr) {
      if (!seen[tr.dataset.sessionId] && !removeTimers[tr.dataset.sessionId]) {
        tr.remove();
        T.refreshSections(['recent-section', 'summary']);
      }
    });
    updateEmpty();
  }

  var resyncing = false;
  function resync() {
    if (resyncing) return;
    resyncing = true;
    live.poll().then(function () { resyncing = false; });
  }

  live.on('recording:started', function (s) {
    var tr = rowFor(s.id) || createRow(s);
    fillSession(tr, s);
    T.refreshSections(['recent-section']);
  });
  live.on('recording:progress', function (p) {
    var tr = rowFor(p.session_id);
    if (!tr) { resync(); return; }
    fillProgress(tr, p);
  });
  live.on('recording:status', function (s) {
    var tr = rowFor(s.id);
    if (tr) fillSession(tr, s);
    else if (!FINAL[s.status]) { resync(); }
    if (FINAL[s.status]) {
      if (tr) finish(tr);
      T.refreshSections(['recent-section', 'summary']);
    }
  });
  live.on('transfer:status', function (d) {
    if (FINAL[d.transfer_status] || d.transfer_status === 'skipped') {
      T.refreshSections(['recent-section']);
    }
  });
  live.on('station:changed', function () {
    T.refreshSections(['stations-section', 'schedules-section', 'summary']);
  });
  live.on('schedule:changed', function () {
    T.refreshSections(['schedules-section', 'summary']);
  });
  live.on('active', applyActive);

  // Keep the system figures fresh (disk, memory, CPU).
  setInterval(function () {
    if (!document.hidden) T.refreshHealth().catch(function () {});
  }, 10000);

  T.dashboard = {rowFor: rowFor, applyActive: applyActive};
})();
