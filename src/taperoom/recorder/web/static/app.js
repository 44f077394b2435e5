/* Taperoom recorder dashboard: shared helpers, page actions and live status.
 *
 * Live status: a WebSocket on /ws ({"event", "data"} frames), reconnected with
 * exponential backoff (1 s doubling to 30 s, with jitter); while it is down the
 * page polls GET /api/sessions/active every 3 s. Page scripts subscribe with
 * Taperoom.live.on(eventName, fn); polled/resynced active sessions arrive as the
 * pseudo-event "active" (the list of session dicts with their progress).
 * Elements with data-refresh-on="event names" are re-rendered from the server
 * (same URL, same element id) when one of those events arrives.
 *
 * Lists loaded more than once (sections, filtered lists, reloads after an action)
 * use Taperoom.newest(): an answer is shown only if no newer load of the same list
 * was started meanwhile, so a slow, older answer never replaces a newer one.
 */
(function () {
  'use strict';

  var T = window.Taperoom = window.Taperoom || {};
  var FINAL = {completed: true, failed: true};
  // Defaults; a page may set window.Taperoom = {POLL_MS: ...} before this script.
  T.POLL_MS = T.POLL_MS || 3000;
  T.BACKOFF_MAX_MS = T.BACKOFF_MAX_MS || 30000;

  // -- formatting (times arrive as ISO 8601 in the configured zone) ------------------
  T.time = function (iso, seconds) {
    if (!iso) return '—';
    var m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})(:\d{2})?/.exec(String(iso));
    if (!m) return String(iso);
    return m[1] + ' ' + m[2] + (seconds ? (m[3] || ':00') : '');
  };
  T.bytes = function (n) {
    if (n === null || n === undefined) return '—';
    var units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'], size = Number(n), i = 0;
    while (Math.abs(size) >= 1024 && i < units.length - 1) { size /= 1024; i++; }
    return i === 0 ? Math.round(size) + ' B' : size.toFixed(1) + ' ' + units[i];
  };
  T.duration = function (s) {
    if (s === null || s === undefined) return '—';
    var total = Math.max(0, Math.round(Number(s))), h = Math.floor(total / 3600),
        m = Math.floor((total % 3600) / 60), sec = total % 60;
    var pad = function (x) { return (x < 10 ? '0' : '') + x; };
    return h ? h + ':' + pad(m) + ':' + pad(sec) : m + ':' + pad(sec);
  };
  T.esc = function (s) {
    return String(s === null || s === undefined ? '' : s).replace(/[&<>"']/g, function (c) {
      return {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c];
    });
  };
  T.badgeHtml = function (value, kind) {
    if (!value) return '<span class="muted">—</span>';
    return '<span class="badge badge-' + T.esc(kind || 'status') + ' badge-' + T.esc(value) +
      '" data-badge="' + T.esc(kind || 'status') + '" data-value="' + T.esc(value) + '">' +
      T.esc(String(value).replace(/_/g, ' ')) + '</span>';
  };

  // -- API calls ----------------------------------------------------------------------
  function messageOf(data, status) {
    if (!data) return 'HTTP ' + status;
    if (Array.isArray(data.details) && data.details.length) {
      return data.details.map(function (d) {
        return d.field ? d.field + ': ' + d.message : d.message;
      }).join('; ');
    }
    if (typeof data.detail === 'string') return data.detail;
    return data.message || data.error || 'HTTP ' + status;
  }
  // CSRF token of the signed-in session (absent when the recorder needs no sign-in)
  T.csrfToken = function () {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute('content') : '';
  };
  T.api = function (method, url, body) {
    var init = {method: method, headers: {Accept: 'application/json'}};
    var token = T.csrfToken();
    if (token) init.headers['X-CSRF-Token'] = token;
    if (body instanceof FormData) {
      init.body = body;
    } else if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers['Content-Type'] = 'application/json';
    }
    return fetch(url, init).then(function (res) {
      return res.text().then(function (text) {
        var data = null;
        if (text) { try { data = JSON.parse(text); } catch (e) { data = {message: text}; } }
        if (res.status === 401 && T.csrfToken()) {
          // the session ended (signed out elsewhere, expired): sign in again
          window.location.href = '/login?next=' +
            encodeURIComponent(window.location.pathname + window.location.search);
        }
        if (!res.ok) {
          var err = new Error(messageOf(data, res.status));
          err.status = res.status; err.data = data; err.details = (data && data.details) || [];
          throw err;
        }
        return data;
      });
    });
  };

  // -- flash messages (survive one navigation through sessionStorage) ----------------
  T.flash = function (message, kind) {
    var el = document.getElementById('flash');
    if (!el) return;
    el.textContent = message;
    el.className = 'flash' + (kind === 'error' ? ' flash-error' : '');
    el.hidden = false;
    clearTimeout(T._flashTimer);
    if (kind !== 'error') T._flashTimer = setTimeout(function () { el.hidden = true; }, 6000);
  };
  T.flashNext = function (message, kind) {
    try { sessionStorage.setItem('taperoom-flash', JSON.stringify([message, kind || 'ok'])); }
    catch (e) { /* private mode: no flash */ }
  };
  function showStoredFlash() {
    try {
      var raw = sessionStorage.getItem('taperoom-flash');
      if (!raw) return;
      sessionStorage.removeItem('taperoom-flash');
      var v = JSON.parse(raw);
      T.flash(v[0], v[1]);
    } catch (e) { /* ignore */ }
  }
  T.go = function (url, message, kind) {
    if (message) T.flashNext(message, kind);
    if (url === 'reload') window.location.reload(); else window.location.href = url;
  };

  // -- form errors -------------------------------------------------------------------
  T.showFormError = function (form, err) {
    var box = form.querySelector('.form-error');
    form.querySelectorAll('[aria-invalid="true"]').forEach(function (el) {
      el.removeAttribute('aria-invalid');
    });
    if (!err) { if (box) box.hidden = true; return; }
    var details = err.details || [];
    details.forEach(function (d) {
      var field = d.field && form.querySelector('[name="' + String(d.field).split('.').pop() + '"]');
      if (field) field.setAttribute('aria-invalid', 'true');
    });
    if (!box) { T.flash(err.message, 'error'); return; }
    var html = '<strong>' + T.esc(details.length ? 'Please check these fields:' : err.message) + '</strong>';
    if (details.length) {
      html += '<ul>' + details.map(function (d) {
        return '<li>' + (d.field ? '<code>' + T.esc(d.field) + '</code>: ' : '') + T.esc(d.message) + '</li>';
      }).join('') + '</ul>';
    }
    box.innerHTML = html;
    box.hidden = false;
    box.scrollIntoView({block: 'nearest'});
  };

  // -- newest answer wins -------------------------------------------------------------
  // Loads and live row updates are numbered in the order they happen (one count for the
  // page). T.newest() makes the loader of one list: load(request, show) calls
  // show(answer, number) only if no newer load of that list was started meanwhile; an
  // older answer, or its error, is dropped (the newer load shows the newer state).
  var seq = 0;
  T.newest = function () {
    var latest = 0, pending = false;
    return {
      // true while the newest load has not answered yet
      busy: function () { return pending; },
      load: function (request, show) {
        var mine = latest = ++seq;
        pending = true;
        return Promise.resolve(request).then(function (answer) {
          if (mine !== latest) return undefined;
          pending = false;
          return show(answer, mine);
        }, function (err) {
          if (mine !== latest) return undefined;
          pending = false;
          throw err;
        });
      }
    };
  };

  // The newest live update of each session row (status, upload) with its number: a
  // section re-rendered from a page asked for before the update gets it again, so the
  // older render does not undo the newer event.
  var liveUpdates = {};
  function liveUpdate(key, apply) {
    liveUpdates[key] = {at: ++seq, apply: apply};
    apply(document);
  }
  function replayLiveUpdates(since, root) {
    Object.keys(liveUpdates).forEach(function (key) {
      if (liveUpdates[key].at > since) liveUpdates[key].apply(root);
    });
  }

  // -- session rows anywhere on the page ---------------------------------------------
  function showSessionStatus(root, session) {
    root.querySelectorAll('tr[data-session-id="' + session.id + '"]').forEach(function (tr) {
      tr.dataset.status = session.status;
      var cell = tr.querySelector('[data-field="status"]');
      var badge = cell && cell.querySelector('[data-badge="status"]');
      if (badge) badge.outerHTML = T.badgeHtml(session.status, 'status');
      if (session.status !== 'recording') {
        tr.querySelectorAll('[data-action="stop"]').forEach(function (b) { b.remove(); });
      }
    });
  }
  T.updateSessionRows = function (session) {
    if (!session.status) return;
    liveUpdate('status:' + session.id, function (root) { showSessionStatus(root, session); });
  };
  function showTransfer(root, data) {
    root.querySelectorAll('tr[data-session-id="' + data.session_id + '"]').forEach(function (tr) {
      var cell = tr.querySelector('[data-field="transfer"]');
      if (!cell) return;
      tr.dataset.transfer = data.transfer_status;
      var badge = cell.querySelector('[data-badge="transfer"]');
      var html = T.badgeHtml(data.transfer_status, 'transfer');
      if (badge) badge.outerHTML = html; else cell.insertAdjacentHTML('afterbegin', html);
      var pct = cell.querySelector('[data-field="transfer-progress"]');
      if (data.bytes_total) {
        if (!pct) {
          cell.insertAdjacentHTML('beforeend', '<div class="note" data-field="transfer-progress"></div>');
          pct = cell.querySelector('[data-field="transfer-progress"]');
        }
        pct.textContent = Math.floor(100 * data.bytes_sent / data.bytes_total) + '% of ' + T.bytes(data.bytes_total);
      } else if (pct && data.transfer_status !== 'in_progress') {
        pct.remove();
      }
    });
  }
  T.updateTransfer = function (data) {
    if (!data.transfer_status) return;
    liveUpdate('transfer:' + data.session_id, function (root) { showTransfer(root, data); });
  };

  // -- partial refresh: re-render elements from the server -------------------------
  var pendingRefresh = {}, refreshTimer = null, sectionLoads = {};
  T.refreshSections = function (ids) {
    ids.forEach(function (id) { pendingRefresh[id] = true; });
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(function () {
      var wanted = Object.keys(pendingRefresh);
      pendingRefresh = {};
      var page = fetch(window.location.href, {headers: {Accept: 'text/html'}}).then(function (res) {
        return res.ok ? res.text() : null;
      }).then(function (html) {
        return html ? new DOMParser().parseFromString(html, 'text/html') : null;
      });
      // each section shows the newest page asked for it
      Promise.all(wanted.map(function (id) {
        sectionLoads[id] = sectionLoads[id] || T.newest();
        return sectionLoads[id].load(page, function (doc, asked) {
          var old = document.getElementById(id), fresh = doc && doc.getElementById(id);
          if (!old || !fresh) return null;
          var node = document.importNode(fresh, true);
          old.replaceWith(node);
          replayLiveUpdates(asked, node);
          return id;
        });
      })).then(function (shown) {
        shown = shown.filter(Boolean);
        if (shown.length) document.dispatchEvent(new CustomEvent('taperoom:refreshed', {detail: shown}));
      }).catch(function () { /* next event retries */ });
    }, 300);
  };

  // -- live status -------------------------------------------------------------------
  var live = T.live = {
    state: 'connecting', ws: null, attempts: 0, received: 0, polls: 0,
    handlers: {}, pollTimer: null, retryTimer: null, pingTimer: null, started: false,
    on: function (name, fn) { (this.handlers[name] = this.handlers[name] || []).push(fn); },
    emit: function (name, data) {
      (this.handlers[name] || []).concat(this.handlers['*'] || []).forEach(function (fn) {
        try { fn(data, name); } catch (e) { console.error('live handler', name, e); }
      });
    },
    url: function () {
      return (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws';
    },
    setState: function (state) {
      this.state = state;
      var el = document.getElementById('live-indicator');
      if (!el) return;
      el.dataset.state = state;
      el.querySelector('.text').textContent = {
        live: 'live', polling: 'polling (reconnecting…)', offline: 'offline', connecting: 'connecting…'
      }[state] || state;
    },
    start: function () {
      if (this.started) return;
      this.started = true;
      this.connect();
    },
    connect: function () {
      var self = this, ws;
      clearTimeout(this.retryTimer);
      try { ws = new WebSocket(this.url()); } catch (e) { this.lost(); return; }
      this.ws = ws;
      ws.onopen = function () {
        var wasDown = self.attempts > 0 || self.pollTimer !== null;
        self.attempts = 0;
        self.stopPolling();
        self.setState('live');
        ws.send(JSON.stringify({type: 'subscribe',
          events: ['recording:*', 'transfer:*', 'station:*', 'schedule:*']}));
        clearInterval(self.pingTimer);
        self.pingTimer = setInterval(function () {
          if (ws.readyState === 1) ws.send(JSON.stringify({type: 'ping'}));
        }, 25000);
        if (wasDown) self.poll();  // events may have been missed meanwhile
      };
      ws.onmessage = function (msg) {
        var m;
        try { m = JSON.parse(msg.data); } catch (e) { return; }
        if (!m || !m.event) return;
        self.received++;
        self.emit(m.event, m.data || {});
      };
      ws.onclose = function () {
        if (self.ws === ws) self.lost();
      };
    },
    lost: function () {
      var self = this;
      clearInterval(this.pingTimer);
      this.ws = null;
      this.startPolling();
      var delay = Math.min(T.BACKOFF_MAX_MS, 1000 * Math.pow(2, this.attempts));
      delay = delay * (0.8 + 0.4 * Math.random());
      this.attempts++;
      this.retryTimer = setTimeout(function () { self.connect(); }, delay);
    },
    startPolling: function () {
      if (this.pollTimer !== null) return;
      var self = this;
      this.setState('polling');
      this.poll();
      this.pollTimer = setInterval(function () { self.poll(); }, T.POLL_MS);
    },
    stopPolling: function () {
      clearInterval(this.pollTimer);
      this.pollTimer = null;
    },
    polled: T.newest(),  // a slow, older poll never replaces a newer one
    poll: function () {
      var self = this;
      return this.polled.load(T.api('GET', '/api/sessions/active'), function (data) {
        self.polls++;
        if (self.state === 'offline') self.setState('polling');
        self.emit('active', (data && data.active_sessions) || []);
      }).catch(function () {
        if (self.state !== 'live') self.setState('offline');
      });
    }
  };

  live.on('recording:status', function (s) { T.updateSessionRows(s); });
  live.on('transfer:status', function (d) { T.updateTransfer(d); });

  function bindRefreshers() {
    document.querySelectorAll('[data-refresh-on]').forEach(function (el) {
      if (!el.id) return;
      el.getAttribute('data-refresh-on').split(/\s+/).forEach(function (spec) {
        if (!spec) return;
        // "recording:status/final" refreshes only when a session finished
        var parts = spec.split('/'), name = parts[0], onlyFinal = parts[1] === 'final';
        live.on(name, function (data) {
          if (onlyFinal && !(FINAL[data.status] || FINAL[data.transfer_status] ||
                             data.transfer_status === 'skipped')) return;
          T.refreshSections([el.id]);
        });
      });
    });
  }

  // -- actions (event delegation on data-action) --------------------------------------
  function confirmed(el) {
    var q = el.getAttribute('data-confirm');
    return !q || window.confirm(q);
  }

  function apiAction(el) {
    if (!confirmed(el)) return;
    var body;
    if (el.dataset.body) body = JSON.parse(el.dataset.body);
    el.disabled = true;
    T.api(el.dataset.method || 'POST', el.dataset.url, body).then(function (data) {
      var done = el.dataset.done || 'reload';
      var msg = el.dataset.flash || (data && data.message) || 'Done';
      if (done === 'none') { el.disabled = false; T.flash(msg); } else { T.go(done, msg); }
    }).catch(function (err) {
      el.disabled = false;
      T.flash(err.message, 'error');
    });
  }

  function stopAction(el) {
    if (!window.confirm('Stop this recording? What was captured so far is kept and processed.')) return;
    el.disabled = true;
    T.api('POST', '/api/sessions/' + el.dataset.session + '/stop').then(function (data) {
      T.flash((data && data.message) || 'Stopping');
    }).catch(function (err) { el.disabled = false; T.flash(err.message, 'error'); });
  }

  function retryUploadAction(el) {
    el.disabled = true;
    T.api('POST', '/api/sessions/' + el.dataset.session + '/retry-transfer').then(function () {
      T.flash('Upload queued again');
      T.updateTransfer({session_id: Number(el.dataset.session), transfer_status: 'pending'});
      el.remove();
    }).catch(function (err) { el.disabled = false; T.flash(err.message, 'error'); });
  }

  function recordAction(el) {
    var dialog = document.getElementById('record-dialog');
    var form = document.getElementById('record-form');
    dialog.querySelector('[data-field="station"]').textContent = el.dataset.name || ('#' + el.dataset.station);
    var errEl = dialog.querySelector('.dialog-error');
    errEl.hidden = true;
    form.onsubmit = function (ev) {
      ev.preventDefault();
      var minutes = parseFloat(form.elements.minutes.value);
      if (!(minutes > 0)) { errEl.textContent = 'Enter a duration in minutes.'; errEl.hidden = false; return; }
      var btn = form.querySelector('[type="submit"]');
      btn.disabled = true;
      T.api('POST', '/api/streams/' + el.dataset.station + '/record',
            {duration_seconds: Math.round(minutes * 60 * 1000) / 1000}).then(function (s) {
        btn.disabled = false;
        dialog.close();
        T.flash('Recording started: session #' + s.id + ' (' + (s.station_name || el.dataset.name) + ')');
        live.emit('recording:started', s);
      }).catch(function (err) {
        btn.disabled = false;
        errEl.textContent = err.message;
        errEl.hidden = false;
      });
    };
    dialog.querySelector('[data-close]').onclick = function () { dialog.close(); };
    dialog.showModal();
    form.elements.minutes.focus();
  }

  document.addEventListener('click', function (ev) {
    var el = ev.target.closest('[data-action]');
    if (!el) return;
    var action = el.dataset.action;
    if (action === 'api') { ev.preventDefault(); apiAction(el); }
    else if (action === 'stop') { ev.preventDefault(); stopAction(el); }
    else if (action === 'retry-upload') { ev.preventDefault(); retryUploadAction(el); }
    else if (action === 'record') { ev.preventDefault(); recordAction(el); }
  });

  // -- system health (dashboard and settings) -----------------------------------------
  T.refreshHealth = function () {
    return T.api('GET', '/api/system/status').then(function (s) {
      function set(key, pct, text) {
        document.querySelectorAll('[data-health="' + key + '"]').forEach(function (el) {
          if (text) el.textContent = text;
          var row = el.closest('tr, .meter-row');
          var bar = row && row.querySelector('[role="progressbar"]');
          if (bar && pct !== undefined && pct !== null) {
            bar.setAttribute('aria-valuenow', String(Math.round(pct)));
            bar.querySelector('.bar-fill').style.width = pct + '%';
          }
        });
      }
      if (s.memory_percent !== undefined) {
        set('memory', s.memory_percent, s.memory_total_mb
          ? Math.round(s.memory_used_mb) + ' of ' + Math.round(s.memory_total_mb) + ' MB (' + s.memory_percent + '%)'
          : s.memory_percent + '%');
      }
      if (s.cpu_percent !== undefined) set('cpu', s.cpu_percent, s.cpu_percent + '%');
      if (s.disk_free_gb !== undefined) {
        set('disk', s.disk_percent, s.disk_free_gb + ' GB free of ' + s.disk_total_gb + ' GB');
      }
      document.dispatchEvent(new CustomEvent('taperoom:health', {detail: s}));
      return s;
    });
  };

  document.addEventListener('DOMContentLoaded', function () {
    showStoredFlash();
    bindRefreshers();
    live.start();
  });
})();
