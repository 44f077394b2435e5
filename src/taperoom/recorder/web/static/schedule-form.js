/* Schedule form: live cron help (description and next five runs from
 * POST /api/schedules/validate-cron, 250 ms after the last keystroke), presets,
 * save through POST/PUT /api/schedules. */
(function () {
  'use strict';
  var T = window.Taperoom;
  var form = document.getElementById('schedule-form');
  if (!form) return;
  var scheduleId = form.dataset.scheduleId;
  var input = document.getElementById('cron_expression');
  var help = document.getElementById('cron-help');
  var desc = document.getElementById('cron-description');
  var errEl = document.getElementById('cron-error');
  var list = document.getElementById('cron-next-runs');
  var seq = 0, timer = null;

  function show(state, data) {
    help.dataset.state = state;
    if (state === 'valid') {
      input.removeAttribute('aria-invalid');
      errEl.hidden = true;
      desc.textContent = data.description || '';
      list.innerHTML = (data.next_runs || []).map(function (iso) {
        return '<li><time datetime="' + T.esc(iso) + '">' + T.esc(T.time(iso)) + '</time></li>';
      }).join('');
    } else if (state === 'invalid') {
      input.setAttribute('aria-invalid', 'true');
      desc.textContent = '';
      list.innerHTML = '';
      errEl.textContent = data;
      errEl.hidden = false;
    }
  }

  function check() {
    var expr = input.value.trim();
    var mine = ++seq;
    if (!expr) { show('invalid', 'Enter a cron expression.'); return; }
    help.dataset.state = 'checking';
    T.api('POST', '/api/schedules/validate-cron', {cron_expression: expr}).then(function (data) {
      if (mine !== seq) return;
      if (data && data.valid === false) show('invalid', data.error || 'Invalid cron expression');
      else show('valid', data || {});
    }).catch(function (err) {
      if (mine !== seq) return;
      var d = err.data || {};
      show('invalid', d.error && d.error !== 'Bad Request' ? d.error : err.message);
    });
  }

  input.addEventListener('input', function () {
    clearTimeout(timer);
    timer = setTimeout(check, 250);
  });
  document.querySelectorAll('[data-cron]').forEach(function (btn) {
    btn.addEventListener('click', function () {
      input.value = btn.dataset.cron;
      clearTimeout(timer);
      check();
      input.focus();
    });
  });
  check();

  form.addEventListener('submit', function (ev) {
    ev.preventDefault();
    var el = form.elements;
    var body = {
      stream_config_id: Number(el.stream_config_id.value),
      cron_expression: el.cron_expression.value.trim(),
      duration_minutes: Number(el.duration_minutes.value),
      max_retries: Number(el.max_retries.value || 0),
      is_active: el.is_active.checked
    };
    T.showFormError(form, null);
    var save = document.getElementById('save');
    save.disabled = true;
    var request = scheduleId ? T.api('PUT', '/api/schedules/' + scheduleId, body)
                             : T.api('POST', '/api/schedules', body);
    request.then(function () {
      T.go('/schedules', scheduleId ? 'Schedule saved' : 'Schedule created');
    }).catch(function (err) {
      save.disabled = false;
      T.showFormError(form, err);
    });
  });
})();
