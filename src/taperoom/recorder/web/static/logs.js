/* Logs: GET /api/system/logs?operation_type=&level=&limit= with the filters of
 * the form (kept in the page URL), refreshed every 5 s while "Auto refresh" is
 * checked and the tab is visible. Level and text are also filtered here. A change
 * of the filters loads at once, even while a load is in flight: the newest load's
 * answer is shown, an older one is dropped (Taperoom.newest). */
(function () {
  'use strict';
  var T = window.Taperoom;
  var form = document.getElementById('log-filters');
  var tbody = document.querySelector('#log-table tbody');
  var status = document.getElementById('log-status');
  var empty = document.getElementById('log-empty');
  var RANK = {DEBUG: 10, INFO: 20, WARNING: 30, ERROR: 40, CRITICAL: 50};
  var timer = null, loads = T.newest();
  T.LOG_REFRESH_MS = T.LOG_REFRESH_MS || 5000;

  var params = new URLSearchParams(location.search);
  ['operation_type', 'level', 'limit', 'q'].forEach(function (k) {
    if (params.get(k) && form.elements[k]) form.elements[k].value = params.get(k);
  });
  if (params.get('auto') === '0') form.elements.auto.checked = false;

  function pick(e, keys) {
    for (var i = 0; i < keys.length; i++) {
      if (e[keys[i]] !== undefined && e[keys[i]] !== null && e[keys[i]] !== '') return e[keys[i]];
    }
    return '';
  }

  function row(e) {
    var level = String(pick(e, ['level', 'levelname']) || '').toUpperCase();
    var time = pick(e, ['timestamp', 'time', 'created_at', 'asctime']);
    var session = pick(e, ['session_id']);
    var op = pick(e, ['operation_type', 'operation']);
    return '<tr data-level="' + T.esc(level) + '" data-operation="' + T.esc(op) + '">' +
      '<td class="nowrap">' + T.esc(typeof time === 'number' ? new Date(time * 1000).toISOString() : T.time(time, true)) + '</td>' +
      '<td><span class="badge badge-log-' + T.esc(level.toLowerCase()) + ' ' +
        (RANK[level] >= 40 ? 'badge-failed' : RANK[level] >= 30 ? 'badge-processing' : 'badge-scheduled') + '">' +
        T.esc(level.toLowerCase()) + '</span></td>' +
      '<td>' + T.esc(String(op).replace(/_/g, ' ')) + '</td>' +
      '<td class="num">' + (session !== '' ? '<a href="/sessions">#' + T.esc(session) + '</a>' : '') + '</td>' +
      '<td class="note">' + T.esc(pick(e, ['logger', 'name', 'module'])) + '</td>' +
      '<td class="msg">' + T.esc(pick(e, ['message', 'msg'])) +
        (e.exception || e.exc_info ? '\n' + T.esc(e.exception || e.exc_info) : '') + '</td></tr>';
  }

  function load() {
    var el = form.elements;
    var q = new URLSearchParams();
    if (el.operation_type.value) q.set('operation_type', el.operation_type.value);
    if (el.level.value) q.set('level', el.level.value);
    q.set('limit', el.limit.value);
    var shown = new URLSearchParams(q);
    if (el.q.value) shown.set('q', el.q.value);
    if (!el.auto.checked) shown.set('auto', '0');
    history.replaceState(null, '', '/logs' + (shown.toString() ? '?' + shown : ''));
    var min = RANK[el.level.value] || 0;
    var text = el.q.value.trim().toLowerCase();
    return loads.load(T.api('GET', '/api/system/logs?' + q), function (data) {
      var logs = Array.isArray(data) ? data : (data && (data.logs || data.entries)) || [];
      logs = logs.filter(function (e) {
        var lv = RANK[String(pick(e, ['level', 'levelname'])).toUpperCase()] || 0;
        if (lv < min) return false;
        return !text || JSON.stringify(e).toLowerCase().indexOf(text) >= 0;
      });
      tbody.innerHTML = logs.map(row).join('');
      empty.hidden = logs.length > 0;
      var now = new Date();
      status.textContent = logs.length + ' entr' + (logs.length === 1 ? 'y' : 'ies') +
        ' · updated ' + now.toTimeString().slice(0, 8);
      form.dataset.loaded = String(Number(form.dataset.loaded || 0) + 1);
    }).catch(function (err) {
      status.textContent = 'Could not load the logs: ' + err.message;
    });
  }

  function schedule() {
    clearInterval(timer);
    if (form.elements.auto.checked) {
      // an auto refresh waits for a load in flight (a change of the filters does not)
      timer = setInterval(function () {
        if (!document.hidden && !loads.busy()) load();
      }, T.LOG_REFRESH_MS);
    }
  }

  form.addEventListener('submit', function (ev) { ev.preventDefault(); load(); });
  form.querySelectorAll('select').forEach(function (s) { s.addEventListener('change', load); });
  var typing = null;
  form.elements.q.addEventListener('input', function () {
    clearTimeout(typing);
    typing = setTimeout(load, 300);
  });
  form.elements.auto.addEventListener('change', function () { schedule(); load(); });
  load();
  schedule();
})();
