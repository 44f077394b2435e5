/* Backup page: create (POST /api/backup/create), list (GET /api/backup/list),
 * validate, restore and delete (POST /api/backup/validate|restore,
 * DELETE /api/backup/delete with a JSON body), export/import of the stations.
 * The list shows the newest of its loads (Taperoom.newest): the page's first list,
 * if it comes late, does not replace the list reloaded after a create or delete. */
(function () {
  'use strict';
  var T = window.Taperoom;
  var tbody = document.querySelector('#backup-table tbody');
  var status = document.getElementById('backup-status');
  var empty = document.getElementById('backup-empty');
  var lists = T.newest();

  function contents(meta) {
    if (!meta) return '<span class="muted">—</span>';
    var parts = [];
    if (meta.streams_count !== undefined) parts.push(meta.streams_count + ' stations');
    if (meta.schedules_count !== undefined) parts.push(meta.schedules_count + ' schedules');
    if (Array.isArray(meta.artwork_files) && meta.artwork_files.length) {
      parts.push(meta.artwork_files.length + ' artwork file' + (meta.artwork_files.length === 1 ? '' : 's'));
    }
    return T.esc(parts.join(' · ') || '—');
  }

  function render(list) {
    tbody.innerHTML = list.map(function (b) {
      var f = T.esc(b.filename);
      var created = b.created_at || (b.metadata && b.metadata.created_at);
      return '<tr data-backup="' + f + '">' +
        '<td><code>' + f + '</code></td>' +
        '<td class="nowrap">' + T.esc(T.time(created)) + '</td>' +
        '<td class="num">' + T.esc(T.bytes(b.file_size_bytes)) + '</td>' +
        '<td>' + contents(b.metadata) + '</td>' +
        '<td data-field="valid">' + T.badgeHtml(b.valid === false ? 'invalid' : 'valid', 'valid') + '</td>' +
        '<td class="actions nowrap">' +
          '<button type="button" class="btn btn-small" data-backup-action="validate" aria-label="Validate ' + f + '">Validate</button> ' +
          '<button type="button" class="btn btn-small" data-backup-action="restore" aria-label="Restore ' + f + '">Restore</button> ' +
          '<button type="button" class="btn btn-small btn-danger" data-backup-action="delete" aria-label="Delete ' + f + '">Delete</button>' +
        '</td></tr>';
    }).join('');
    empty.hidden = list.length > 0;
  }

  function load() {
    return lists.load(T.api('GET', '/api/backup/list'), function (data) {
      var list = Array.isArray(data) ? data : (data && data.backups) || [];
      render(list);
      status.textContent = list.length + ' backup' + (list.length === 1 ? '' : 's');
    }).catch(function (err) { status.textContent = 'Could not list the backups: ' + err.message; });
  }

  document.getElementById('backup-create').addEventListener('submit', function (ev) {
    ev.preventDefault();
    var form = ev.target, el = form.elements;
    var body = {include_artwork: el.include_artwork.checked};
    if (el.backup_name.value.trim()) body.backup_name = el.backup_name.value.trim();
    var btn = form.querySelector('[type="submit"]');
    btn.disabled = true;
    T.showFormError(form, null);
    T.api('POST', '/api/backup/create', body).then(function (res) {
      T.flash('Backup created: ' + (res.backup_filename || res.backup_name || ''));
      el.backup_name.value = '';
      return load();
    }).catch(function (err) { T.showFormError(form, err); }).then(function () { btn.disabled = false; });
  });

  tbody.addEventListener('click', function (ev) {
    var btn = ev.target.closest('[data-backup-action]');
    if (!btn) return;
    var tr = btn.closest('tr'), name = tr.dataset.backup, action = btn.dataset.backupAction;
    var call;
    if (action === 'validate') {
      var shown = function (r, ok) {
        tr.querySelector('[data-field="valid"]').innerHTML = T.badgeHtml(ok ? 'valid' : 'invalid', 'valid');
        var why = r && Array.isArray(r.errors) && r.errors.length ? r.errors.join('; ') : (r && r.message) || '';
        T.flash(name + (ok ? ' is valid' : ' is not valid: ' + why), ok ? 'ok' : 'error');
      };
      call = T.api('POST', '/api/backup/validate', {backup_filename: name}).then(function (r) {
        shown(r, !r || r.valid !== false);
      }, function (err) {
        if (err.status === 422) shown(err.data, false); else throw err;
      });
    } else if (action === 'restore') {
      var overwrite = document.getElementById('overwrite_existing').checked;
      if (!window.confirm('Restore ' + name + '?' + (overwrite ? ' Existing stations with the same names are overwritten.' : ' Existing stations are kept.'))) return;
      call = T.api('POST', '/api/backup/restore', {backup_filename: name, overwrite_existing: overwrite}).then(function (r) {
        T.flash((r && r.message) || 'Backup restored');
      });
    } else if (action === 'delete') {
      if (!window.confirm('Delete the backup ' + name + '?')) return;
      call = T.api('DELETE', '/api/backup/delete', {backup_filename: name}).then(function () {
        T.flash('Backup deleted');
        return load();
      });
    }
    if (!call) return;
    btn.disabled = true;
    call.catch(function (err) { T.flash(err.message, 'error'); }).then(function () { btn.disabled = false; });
  });

  document.getElementById('import-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    var out = document.getElementById('import-result');
    var file = document.getElementById('import-file').files[0];
    if (!file) { out.textContent = 'Choose an export file first.'; return; }
    file.text().then(function (text) {
      var doc;
      try { doc = JSON.parse(text); } catch (e) { throw new Error('the file is not JSON'); }
      return T.api('POST', '/api/streams/import', doc);
    }).then(function (r) {
      out.textContent = (r && r.message) || ('Imported ' + r.imported_streams + ' stations and ' + r.imported_schedules + ' schedules');
      if (r && r.errors && r.errors.length) out.textContent += ' — ' + r.errors.join('; ');
    }).catch(function (err) { out.textContent = 'Import failed: ' + err.message; });
  });

  load();
})();
