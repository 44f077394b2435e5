/* Station form: save through POST/PUT /api/streams, then upload the chosen
 * artwork (POST /api/streams/<id>/artwork, multipart field "artwork");
 * local preview of the chosen image; "Test URL" through POST /api/streams/test-url. */
(function () {
  'use strict';
  var T = window.Taperoom;
  var form = document.getElementById('station-form');
  if (!form) return;
  var stationId = form.dataset.stationId;
  var maxBytes = Number(form.dataset.maxArtworkBytes) || 0;
  var fileInput = document.getElementById('artwork');
  var preview = document.getElementById('artwork-preview');
  var empty = document.getElementById('artwork-empty');
  var TYPES = ['image/png', 'image/jpeg', 'image/gif', 'image/webp', 'image/bmp'];
  var objectUrl = null;

  function showPreview(src) {
    if (src) {
      preview.src = src;
      preview.hidden = false;
      empty.hidden = true;
    } else {
      preview.removeAttribute('src');
      preview.hidden = true;
      empty.hidden = false;
    }
  }

  fileInput.addEventListener('change', function () {
    var file = fileInput.files[0];
    fileInput.removeAttribute('aria-invalid');
    if (objectUrl) { URL.revokeObjectURL(objectUrl); objectUrl = null; }
    if (!file) return;
    if (TYPES.indexOf(file.type) < 0) {
      fileInput.setAttribute('aria-invalid', 'true');
      T.flash('Artwork must be a PNG, JPEG, GIF, WebP or BMP image.', 'error');
      fileInput.value = '';
      return;
    }
    if (maxBytes && file.size > maxBytes) {
      fileInput.setAttribute('aria-invalid', 'true');
      T.flash('Artwork is ' + T.bytes(file.size) + '; the limit is ' + T.bytes(maxBytes) + '.', 'error');
      fileInput.value = '';
      return;
    }
    objectUrl = URL.createObjectURL(file);
    showPreview(objectUrl);
    preview.dataset.source = 'local';
  });

  var remove = document.getElementById('remove-artwork');
  if (remove) {
    remove.addEventListener('click', function () {
      if (!window.confirm('Remove the artwork of this station?')) return;
      remove.disabled = true;
      T.api('DELETE', '/api/streams/' + stationId + '/artwork').then(function () {
        showPreview(null);
        remove.remove();
        T.flash('Artwork removed');
      }).catch(function (err) { remove.disabled = false; T.flash(err.message, 'error'); });
    });
  }

  var testBtn = document.getElementById('test-url');
  var testOut = document.getElementById('url-test-result');
  testBtn.addEventListener('click', function () {
    var url = form.elements.stream_url.value.trim();
    testOut.className = 'test-result';
    if (!url) { testOut.textContent = 'Enter a stream URL first.'; testOut.classList.add('bad'); return; }
    testBtn.disabled = true;
    testOut.textContent = 'Testing…';
    T.api('POST', '/api/streams/test-url', {stream_url: url}).then(function (data) {
      var t = (data && data.connection_test) || {};
      testOut.textContent = (t.success ? 'Reachable' : 'Not reachable') + (t.message ? ': ' + t.message : '');
      testOut.classList.add(t.success ? 'ok' : 'bad');
    }).catch(function (err) {
      testOut.textContent = 'Not reachable: ' + err.message;
      testOut.classList.add('bad');
    }).then(function () { testBtn.disabled = false; });
  });

  function values() {
    var el = form.elements;
    var bitrate = el.bitrate_kbps.value.trim();
    return {
      name: el.name.value.trim(),
      stream_url: el.stream_url.value.trim(),
      artist: el.artist.value.trim(),
      album: el.album.value.trim(),
      album_artist: el.album_artist.value.trim(),
      output_filename_pattern: el.output_filename_pattern.value.trim(),
      scp_destination: el.scp_destination.value.trim(),
      bitrate_kbps: bitrate ? Number(bitrate) : null,
      split_tracks: el.split_tracks.checked
    };
  }

  function missing(body) {
    var labels = {name: 'Name', stream_url: 'Stream URL', artist: 'Artist', album: 'Album',
                  album_artist: 'Album artist', output_filename_pattern: 'File name pattern'};
    return Object.keys(labels).filter(function (k) { return !body[k]; }).map(function (k) {
      return {field: k, message: labels[k] + ' is required'};
    });
  }

  form.addEventListener('submit', function (ev) {
    ev.preventDefault();
    var body = values();
    var problems = missing(body);
    if (problems.length) {
      var e = new Error('Please fill in the required fields');
      e.details = problems;
      T.showFormError(form, e);
      return;
    }
    T.showFormError(form, null);
    var save = document.getElementById('save');
    save.disabled = true;
    var request = stationId ? T.api('PUT', '/api/streams/' + stationId, body)
                            : T.api('POST', '/api/streams', body);
    request.then(function (station) {
      var file = fileInput.files[0];
      if (!file) return station;
      var fd = new FormData();
      fd.append('artwork', file, file.name);
      return T.api('POST', '/api/streams/' + station.id + '/artwork', fd).then(function () {
        return station;
      }, function (err) {
        // The station is saved; stay on its edit page to fix the artwork.
        T.go('/streams/' + station.id + '/edit', 'Station saved, but the artwork upload failed: ' +
             err.message, 'error');
        throw null;
      });
    }).then(function (station) {
      T.go('/streams', 'Station “' + station.name + '” saved');
    }).catch(function (err) {
      save.disabled = false;
      if (err) T.showFormError(form, err);
    });
  });
})();
