/* Taperoom curator's page: lists the tracks and calls /admin/api/... with the
   session's CSRF token (from <meta name="csrf-token">). No library, no network
   access beyond this server. */
(function () {
  "use strict";
  var csrf = document.querySelector('meta[name="csrf-token"]').content;
  var tbody = document.getElementById("tracks");
  var status = document.getElementById("status");
  var models = [];
  var busy = 0;

  function setBusy(delta) {
    busy += delta;
    document.body.dataset.busy = String(busy);
  }

  function say(text, bad) {
    status.textContent = text;
    status.classList.toggle("adm-bad", !!bad);
  }

  function api(method, path, body, headers) {
    var h = Object.assign({"X-CSRF-Token": csrf, "Accept": "application/json"}, headers || {});
    setBusy(1);
    return fetch(path, {method: method, body: body, headers: h, credentials: "same-origin"})
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (data) {
          if (r.status === 401) { window.location.reload(); }
          if (!r.ok) { throw new Error(data.error || ("HTTP " + r.status)); }
          return data;
        });
      })
      .finally(function () { setBusy(-1); });
  }

  function fmtTime(s) {
    var m = Math.floor(s / 60), r = Math.round(s - m * 60);
    if (r === 60) { m += 1; r = 0; }
    return m + ":" + (r < 10 ? "0" : "") + r;
  }

  function cell(tr, text, cls) {
    var td = document.createElement("td");
    td.textContent = text;
    if (cls) { td.className = cls; }
    tr.appendChild(td);
    return td;
  }

  function button(text, label, onClick, cls) {
    var b = document.createElement("button");
    b.type = "button";
    b.textContent = text;
    b.setAttribute("aria-label", label);
    if (cls) { b.className = cls; }
    b.addEventListener("click", onClick);
    return b;
  }

  function row(t) {
    var tr = document.createElement("tr");
    tr.dataset.filename = t.filename;
    var name = cell(tr, t.title);
    name.title = t.filename;
    cell(tr, fmtTime(t.duration), "num");
    cell(tr, t.overall_degradation.toFixed(1) + " %", "num").dataset.testid = "worn";
    cell(tr, String(t.total_streams), "num");
    var sel = document.createElement("select");
    sel.setAttribute("aria-label", "Wear model of " + t.filename);
    sel.dataset.testid = "wear-model";
    models.forEach(function (m) {
      var o = document.createElement("option");
      o.value = m.name;
      o.textContent = m.name + (m.default ? " (default)" : "");
      o.title = m.description;
      sel.appendChild(o);
    });
    sel.value = t.wear_model;
    sel.addEventListener("change", function () {
      api("PUT", "/admin/api/tracks/" + encodeURIComponent(t.filename),
          JSON.stringify({wear_model: sel.value}), {"Content-Type": "application/json"})
        .then(function (d) { say(d.filename + " now wears with " + d.wear_model + "."); })
        .catch(function (e) { say(e.message, true); refresh(); });
    });
    cell(tr, "").appendChild(sel);
    var actions = cell(tr, "");
    var reset = button("Reset", "Reset " + t.filename + " from its pristine copy", function () {
      api("POST", "/admin/api/tracks/" + encodeURIComponent(t.filename) + "/reset")
        .then(function (d) { say(d.filename + " is pristine again."); refresh(); })
        .catch(function (e) { say(e.message, true); });
    });
    reset.dataset.testid = "reset";
    if (!t.pristine) {
      reset.disabled = true;
      reset.title = "No pristine copy (KEEP_ORIGINALS was off when the track arrived)";
    }
    actions.appendChild(reset);
    actions.appendChild(document.createTextNode(" "));
    var del = button("Delete", "Delete " + t.filename, function () {
      if (!window.confirm("Delete " + t.filename + " for good?")) { return; }
      api("DELETE", "/admin/api/tracks/" + encodeURIComponent(t.filename))
        .then(function (d) { say(d.deleted + " deleted."); refresh(); })
        .catch(function (e) { say(e.message, true); });
    }, "adm-danger");
    del.dataset.testid = "delete";
    actions.appendChild(del);
    return tr;
  }

  function refresh() {
    return api("GET", "/admin/api/tracks").then(function (tracks) {
      tbody.textContent = "";
      tracks.forEach(function (t) { tbody.appendChild(row(t)); });
      document.getElementById("empty").hidden = tracks.length > 0;
      tbody.dataset.loaded = String(tracks.length);
    }).catch(function (e) { say(e.message, true); });
  }

  document.getElementById("upload").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var input = document.getElementById("upload-file");
    if (!input.files.length) { return; }
    var form = new FormData();
    form.append("file", input.files[0]);
    say("Uploading " + input.files[0].name + "…");
    api("POST", "/admin/api/tracks", form)
      .then(function (d) { say(d.filename + " added."); input.value = ""; refresh(); })
      .catch(function (e) { say(e.message, true); });
  });

  document.getElementById("restore").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var input = document.getElementById("restore-file");
    if (!input.files.length) { return; }
    if (!window.confirm("Replace every track by those of " + input.files[0].name + "?")) { return; }
    say("Restoring…");
    api("POST", "/admin/api/restore", input.files[0], {"Content-Type": "application/x-tar"})
      .then(function (d) {
        say("Restored " + d.restored.length + " tracks; removed " + d.removed.length + ".");
        input.value = "";
        refresh();
      })
      .catch(function (e) { say(e.message, true); });
  });

  setBusy(0);
  fetch("/wear-models").then(function (r) { return r.json(); })
    .then(function (m) { models = m; return refresh(); })
    .catch(function (e) { say(e.message, true); });
}());
