/* Taperoom ephemeral analytics page.
 *
 * Reads GET /api/analytics (for the track in #analytics[data-filename], or all
 * tracks) and draws two Chart.js charts: plays per time bucket (bars) and the
 * overall degradation at the end of each bucket (a line). It follows new plays
 * over WebSocket /ws/wear and reads the figures again (at most every second)
 * after each push.
 *
 * No play is missed around the live channel: the server sends the channel's
 * first message, its "hello" (with the last play number, seq), once the
 * subscription exists, and pushes every play after it. The page says live "on"
 * only from that hello, and reads the figures again on every hello, the first
 * one and each one after a reconnect: what was played before the subscription
 * (while the socket was opening, or while it was gone) is in that reading, and
 * everything later is pushed. Only the answer of the latest reading is drawn, so
 * a slow earlier answer never replaces a newer one. A lost connection is opened
 * again after 1 s, then 2, 4, ... up to 30 s (the player's live channel does the
 * same, embed.js).
 *
 * window.taperoomAnalytics.state() tells what the page shows (for tests and
 * for a look from the console).
 */
(function () {
  "use strict";

  var root = document.getElementById("analytics");
  var filename = root.dataset.filename || "";
  var bucketSelect = document.getElementById("bucket");
  var LIVE_RETRY_MS = 1000;      // first wait before reopening the live channel (doubles)
  var LIVE_RETRY_MAX_MS = 30000;
  var state = { loads: 0, stale: 0, pushes: 0, hellos: 0, seq: null, live: "off",
                error: null, report: null };
  var reloadTimer = null;
  var requested = 0;             // readings of /api/analytics asked for
  var socket = null;
  var retryMs = LIVE_RETRY_MS;

  var css = getComputedStyle(root);
  var accent = css.getPropertyValue("--tra-accent").trim() || "#4fd1c5";
  var muted = css.getPropertyValue("--tra-muted").trim() || "#9aa3b2";
  var line = css.getPropertyValue("--tra-line").trim() || "#2b303a";
  var wear = "#ff8c69";

  Chart.defaults.color = muted;
  Chart.defaults.borderColor = line;
  Chart.defaults.animation = false;

  function query(format) {
    var params = new URLSearchParams();
    if (filename) params.set("filename", filename);
    if (bucketSelect.value !== "auto") params.set("bucket", bucketSelect.value);
    params.set("format", format);
    return "/api/analytics?" + params.toString();
  }

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  /* A bucket's label in the browser's time zone, as fine as the bucket. */
  function label(unix, bucket) {
    var d = new Date(unix * 1000);
    var day = d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate());
    if (bucket === "day") return day;
    var time = pad(d.getHours()) + ":" + pad(d.getMinutes());
    return bucket === "hour" ? day + " " + time : time;
  }

  var playsChart = new Chart(document.getElementById("plays-chart"), {
    type: "bar",
    data: { labels: [], datasets: [{ label: "plays", data: [], backgroundColor: accent }] },
    options: {
      maintainAspectRatio: false,
      plugins: { legend: { display: false } },
      scales: { y: { beginAtZero: true, ticks: { precision: 0 } } }
    }
  });

  var degradationChart = new Chart(document.getElementById("degradation-chart"), {
    type: "line",
    data: { labels: [], datasets: [{ label: "degradation %", data: [], borderColor: wear,
                                      backgroundColor: wear, pointRadius: 2, stepped: true,
                                      spanGaps: false }] },
    options: {
      maintainAspectRatio: false,
      plugins: { legend: { display: false } },
      scales: { y: { beginAtZero: true, suggestedMax: 1 } }
    }
  });

  function percent(value) {
    return value === null || value === undefined ? "–" : value.toFixed(2);
  }

  function fillTable(tracks) {
    var body = document.getElementById("tracks-body");
    body.textContent = "";
    tracks.forEach(function (t) {
      var row = document.createElement("tr");
      var name = document.createElement("td");
      var link = document.createElement("a");
      link.href = "/analytics?filename=" + encodeURIComponent(t.filename);
      link.textContent = t.filename;
      name.appendChild(link);
      var plays = document.createElement("td");
      plays.textContent = String(t.plays);
      var deg = document.createElement("td");
      deg.textContent = percent(t.degradation);
      row.appendChild(name);
      row.appendChild(plays);
      row.appendChild(deg);
      body.appendChild(row);
    });
  }

  function render(report) {
    var labels = report.buckets.map(function (b) { return label(b.start_unix, report.bucket); });
    playsChart.data.labels = labels;
    playsChart.data.datasets[0].data = report.buckets.map(function (b) { return b.plays; });
    playsChart.update();
    degradationChart.data.labels = labels;
    degradationChart.data.datasets[0].data = report.buckets.map(function (b) {
      return b.degradation;
    });
    degradationChart.update();
    var last = report.buckets.length ? report.buckets[report.buckets.length - 1] : null;
    document.getElementById("total-plays").textContent = String(report.total_plays);
    document.getElementById("degradation-now").textContent =
      last ? percent(last.degradation) + (last.degradation === null ? "" : " %") : "–";
    document.getElementById("bucket-size").textContent = report.bucket;
    fillTable(report.tracks);
  }

  /* Read the figures and draw them, unless a later reading was asked for meanwhile
   * (its answer, drawn instead, is the newer one). */
  function load() {
    if (reloadTimer !== null) { clearTimeout(reloadTimer); reloadTimer = null; }
    var mine = ++requested;
    document.getElementById("json-link").href = query("json");
    document.getElementById("csv-link").href = query("csv");
    return fetch(query("json"), { headers: { Accept: "application/json" } })
      .then(function (r) {
        return r.json().then(function (body) {
          if (!r.ok) throw new Error(body.error || ("HTTP " + r.status));
          return body;
        });
      })
      .then(function (report) {
        if (mine !== requested) { state.stale += 1; return; }
        state.report = report;
        state.error = null;
        state.loads += 1;
        render(report);
      })
      .catch(function (e) {
        if (mine === requested) state.error = String(e.message || e);
      });
  }

  function reloadSoon() {
    if (reloadTimer === null) reloadTimer = setTimeout(load, 1000);
  }

  function setLive(on) {
    state.live = on ? "on" : "off";
    document.getElementById("live").textContent = state.live;
  }

  function retry() {
    setTimeout(connect, retryMs);
    retryMs = Math.min(retryMs * 2, LIVE_RETRY_MAX_MS);
  }

  /* Open the live channel; live is "on" from its hello until it closes. */
  function connect() {
    var url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host +
      "/ws/wear" + (filename ? "?filename=" + encodeURIComponent(filename) : "");
    var ws;
    try { ws = new WebSocket(url); } catch (e) { retry(); return; }
    socket = ws;
    ws.onmessage = function (event) {
      var message;
      try { message = JSON.parse(event.data); } catch (e) { return; }
      if (!message || typeof message !== "object") return;
      if (typeof message.seq === "number") state.seq = message.seq;
      if (message.type === "hello") {
        // subscribed: every later play is pushed; read what came before it
        state.hellos += 1;
        retryMs = LIVE_RETRY_MS;
        setLive(true);
        load();
      } else if (message.type === "play" || message.type === "resync") {
        state.pushes += 1;
        reloadSoon();
      }
    };
    ws.onclose = function () {
      if (socket !== ws) return;
      socket = null;
      setLive(false);
      retry();
    };
  }

  bucketSelect.addEventListener("change", load);

  window.taperoomAnalytics = {
    state: function () {
      return {
        loads: state.loads,
        stale: state.stale,
        pushes: state.pushes,
        hellos: state.hellos,
        seq: state.seq,
        live: state.live,
        error: state.error,
        totalPlays: state.report ? state.report.total_plays : null,
        bucket: state.report ? state.report.bucket : null,
        plays: playsChart.data.datasets[0].data.slice(),
        degradation: degradationChart.data.datasets[0].data.slice()
      };
    },
    reload: load
  };

  if (!document.querySelector("[data-testid=error]")) {
    load();
    connect();
  }
})();
