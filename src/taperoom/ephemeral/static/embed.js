/*
 * Taperoom ephemeral player: the whole player in one dependency-free script.
 *
 * Embed it anywhere with
 *
 *   <div id="taperoom-player" data-api="https://audio.example.org"></div>
 *   <script src="https://audio.example.org/static/embed.js"></script>
 *
 * Every element with id="taperoom-player" or a data-taperoom-player attribute
 * becomes a player. The API base is the element's data-api attribute, else the
 * address this script was loaded from (minus "/static/embed.js").
 *
 * Playing a track wears it: each 0.5 s segment the playhead actually passes
 * through is reported once with POST /degrade/<file>; segments jumped over by a
 * seek are never reported. Nothing is exposed globally but window.TaperoomPlayer.
 *
 * Wear shows live: the player subscribes to the server's pushes of every counted
 * play (WebSocket /ws/wear, else Server-Sent Events /events/wear), of the selected
 * track or, before one is selected, of all tracks, and repaints the waveform and
 * the track list from them, whoever played. It falls back to polling /stats and
 * /tracks only while neither channel can be opened.
 */
(function () {
  "use strict";

  if (window.TaperoomPlayer && window.TaperoomPlayer.mount) {
    // Loaded twice on one page: mount any new containers and stop.
    window.TaperoomPlayer.mountAll();
    return;
  }

  var SCRIPT = document.currentScript;
  var SCRIPT_SRC = SCRIPT && SCRIPT.src ? SCRIPT.src : "";

  var TRACKS_EVERY_MS = 10000;   // refresh of the track list (only without live pushes)
  var STATS_EVERY_MS = 2000;     // refresh of the selected track's wear (idem)
  var LIVE_RETRY_MS = 1000;      // first wait before reopening the live channel (doubles)
  var LIVE_RETRY_MAX_MS = 30000;
  var POLL_EVERY_MS = 100;       // playhead sampling for /degrade
  var JUMP_SLACK_S = 0.75;       // playhead advance beyond wall time that counts as a seek
  var SEEK_STEP_S = 5;           // arrow keys on the position slider
  var MAX_LOG = 10000;           // entries kept in the posted-segment log

  // ---- helpers -----------------------------------------------------------

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      var value = attrs[key];
      if (value === null || value === undefined || value === false) return;
      if (key === "text") node.textContent = value;
      else if (key === "className") node.className = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    });
    (children || []).forEach(function (child) { node.appendChild(child); });
    return node;
  }

  function fmtTime(seconds) {
    if (!isFinite(seconds) || seconds < 0) seconds = 0;
    var s = Math.floor(seconds);
    var h = Math.floor(s / 3600);
    var m = Math.floor((s % 3600) / 60);
    var sec = s % 60;
    var mm = h > 0 ? String(m).padStart(2, "0") : String(m);
    return (h > 0 ? h + ":" : "") + mm + ":" + String(sec).padStart(2, "0");
  }

  function fmtPercent(value) {
    var v = Number(value) || 0;
    return (v < 10 ? v.toFixed(1) : v.toFixed(0)) + " %";
  }

  /** Colour of a segment from its wear, 0 (fresh) .. 1 (worn out). */
  function wearColour(wear) {
    // sqrt makes the first plays visible at the default rate of 1 % per play.
    var k = Math.sqrt(Math.min(Math.max(wear, 0), 1));
    var hue = 168 - 168 * k;
    var sat = 68 + 12 * k;
    var light = 58 - 6 * k;
    return "hsl(" + hue.toFixed(1) + ", " + sat.toFixed(0) + "%, " + light.toFixed(0) + "%)";
  }

  function trimSlash(url) {
    return String(url).replace(/\/+$/, "");
  }

  /** API base for a container: data-api, else where this script came from. */
  function apiBaseFor(container) {
    var given = container.getAttribute("data-api");
    if (given) return trimSlash(given);
    if (SCRIPT_SRC) {
      var url = new URL(SCRIPT_SRC, document.baseURI);
      return url.origin + url.pathname.replace(/\/static\/embed\.js$/, "").replace(/\/+$/, "");
    }
    return window.location.origin;
  }

  function injectCss(api) {
    if (document.querySelector("link[data-taperoom-css]")) return;
    var href = api + "/static/player.css";
    if (SCRIPT_SRC) {
      var url = new URL("player.css", SCRIPT_SRC);
      url.search = new URL(SCRIPT_SRC).search;
      href = url.href;
    }
    var link = el("link", { rel: "stylesheet", href: href, "data-taperoom-css": "" });
    (document.head || document.documentElement).appendChild(link);
  }

  function fetchJson(url, options) {
    return fetch(url, options).then(function (res) {
      if (!res.ok) {
        var err = new Error("HTTP " + res.status + " from " + url);
        err.status = res.status;
        return res.json().catch(function () { return {}; }).then(function (body) {
          if (body && body.error) err.message = body.error + " (HTTP " + res.status + ")";
          throw err;
        });
      }
      return res.json();
    });
  }

  // ---- live wear pushes ------------------------------------------------------

  /**
   * The server's pushes of counted plays: WebSocket /ws/wear, or EventSource
   * /events/wear where a WebSocket cannot be opened. Reopens after a drop with
   * ?since=<last seq> (nothing is missed while the server keeps the plays);
   * handlers: onPush(play), onSync(filename) (hello of a fresh subscription, or
   * resync: read again the state of that track, or of all when null),
   * onState(open).
   */
  function LiveWear(api, handlers) {
    this.api = api;
    this.handlers = handlers;
    this.filename = null;
    this.seq = null;          // last seq seen on the current subscription
    this.channel = null;      // {kind, close}
    this.open = false;
    this.noSocket = !window.WebSocket;
    this.noEvents = !window.EventSource;
    this.delay = LIVE_RETRY_MS;
    this.retry = 0;
    this.closed = false;
  }

  LiveWear.prototype.follow = function (filename) {
    if (this.channel && this.filename === filename) return;
    this.filename = filename;
    this.seq = null;
    this.reopen();
  };

  LiveWear.prototype.query = function () {
    var q = [];
    if (this.filename) q.push("filename=" + encodeURIComponent(this.filename));
    if (this.seq !== null) q.push("since=" + this.seq);
    return q.length ? "?" + q.join("&") : "";
  };

  LiveWear.prototype.reopen = function () {
    clearTimeout(this.retry);
    if (this.channel) { var old = this.channel; this.channel = null; old.close(); }
    if (this.closed) return;
    if (!this.noSocket) this.openSocket();
    else if (!this.noEvents) this.openEvents();
    else this.setOpen(false);
  };

  LiveWear.prototype.setOpen = function (open) {
    if (this.open === open) return;
    this.open = open;
    this.handlers.onState(open);
  };

  LiveWear.prototype.message = function (channel, kind, text) {
    if (channel !== this.channel) return;
    var msg;
    try { msg = JSON.parse(text); } catch (e) { return; }
    if (!msg || typeof msg !== "object") return;
    var resumed = this.seq !== null;
    if (typeof msg.seq === "number") this.seq = msg.seq;
    if (kind === "hello") {
      this.delay = LIVE_RETRY_MS;
      this.setOpen(true);
      if (!resumed) this.handlers.onSync(this.filename);
    } else if (kind === "resync") {
      this.handlers.onSync(this.filename);
    } else if (kind === "play") {
      this.handlers.onPush(msg);
    }
  };

  /** The channel failed: before its first message, try the other kind; later, reopen. */
  LiveWear.prototype.failed = function (channel, kind, everOpen) {
    if (channel !== this.channel) return;
    this.channel = null;
    channel.close();
    this.setOpen(false);
    if (this.closed) return;
    if (!everOpen && kind === "socket" && !this.noEvents) {
      this.noSocket = true;   // blocked on the way (a proxy): use Server-Sent Events
      this.openEvents();
      return;
    }
    var self = this;
    if (!everOpen) this.noSocket = !window.WebSocket;  // try both again next time
    this.retry = setTimeout(function () { self.reopen(); }, this.delay);
    this.delay = Math.min(this.delay * 2, LIVE_RETRY_MAX_MS);
  };

  LiveWear.prototype.openSocket = function () {
    var self = this;
    var url = this.api.replace(/^http/, "ws") + "/ws/wear" + this.query();
    var ws;
    try { ws = new WebSocket(url); } catch (e) { this.noSocket = true; this.reopen(); return; }
    var everOpen = false;
    var channel = { kind: "socket", close: function () { ws.onclose = null; ws.close(); } };
    this.channel = channel;
    ws.onmessage = function (ev) {
      var kind = "";
      try { kind = JSON.parse(ev.data).type; } catch (e) { return; }
      if (kind === "hello") everOpen = true;
      self.message(channel, kind, ev.data);
    };
    ws.onclose = function () { self.failed(channel, "socket", everOpen); };
  };

  LiveWear.prototype.openEvents = function () {
    var self = this;
    var es = new EventSource(this.api + "/events/wear" + this.query());
    var everOpen = false;
    var channel = { kind: "events", close: function () { es.close(); } };
    this.channel = channel;
    ["hello", "play", "resync"].forEach(function (kind) {
      es.addEventListener(kind, function (ev) {
        if (kind === "hello") everOpen = true;
        self.message(channel, kind, ev.data);
      });
    });
    // EventSource would reconnect by itself, without the filter's since: do it here.
    es.onerror = function () { self.failed(channel, "events", everOpen); };
  };

  LiveWear.prototype.close = function () {
    this.closed = true;
    clearTimeout(this.retry);
    if (this.channel) { var old = this.channel; this.channel = null; old.close(); }
  };

  var uid = 0;

  // ---- one player ----------------------------------------------------------

  function Player(container, options) {
    this.container = container;
    this.api = trimSlash((options && options.api) || apiBaseFor(container));
    this.id = "trp" + (++uid);
    this.rate = 1.0;             // DEGRADATION_RATE, percent per play
    this.tracks = [];
    this.rows = new Map();       // filename -> {li, button, title, meta}
    this.track = null;           // selected track (from /tracks)
    this.meta = null;            // {duration, segmentDuration, totalSegments}
    this.peaks = [];             // [{min, max}]
    this.counts = [];            // play count per segment, as the page believes
    this.posted = [];            // segment indexes posted for the selected track, in order
    this.acked = 0;              // successful /degrade answers for the selected track
    this.pending = 0;            // /degrade requests not answered yet
    this.lastPosted = null;      // last segment posted during continuous playback
    this.prev = null;            // {t, now}: last playhead sample while playing
    this.degradeSeq = 0;         // bumps on every /degrade answer (see refreshStats)
    this.chain = Promise.resolve();
    this.scrubbing = false;
    this.waveDirty = true;
    this.frame = 0;
    this.timers = [];
    this.polling = [];           // timers of the fallback polling (no live channel)
    this.pushes = 0;             // live pushes received
    this.build();
    this.bind();
    this.start();
  }

  Player.prototype.build = function () {
    var c = this.container;
    c.textContent = "";
    c.setAttribute("data-taperoom-mounted", "");
    var ids = { tracks: this.id + "-tracks", seek: this.id + "-seek", now: this.id + "-now" };

    this.audio = el("audio", { preload: "metadata", "data-testid": "audio" });
    this.nowTitle = el("p", { className: "trp-now-title", id: ids.now, "data-testid": "now-title",
      text: "No track selected" });
    this.canvas = el("canvas", { className: "trp-wave", "data-testid": "waveform",
      role: "img", "aria-label": "Waveform, coloured by wear", "data-counts": "" });
    this.offscreen = document.createElement("canvas");
    this.playBtn = el("button", { type: "button", className: "trp-play", "data-testid": "play",
      "aria-label": "Play", "aria-describedby": ids.now, disabled: true });
    this.playIcon = el("span", { className: "trp-play-icon", "aria-hidden": "true" });
    this.playBtn.appendChild(this.playIcon);
    this.seekInput = el("input", { type: "range", id: ids.seek, className: "trp-seek",
      "data-testid": "seek", min: 0, max: 0, step: "0.1", value: 0, disabled: true });
    this.timeOut = el("span", { className: "trp-time", "data-testid": "time",
      "aria-hidden": "true", text: "0:00 / 0:00" });
    this.status = el("p", { className: "trp-status", role: "status", "data-testid": "status",
      "aria-live": "polite", text: "Loading tracks…" });
    this.list = el("ul", { className: "trp-tracks", "data-testid": "track-list",
      "aria-labelledby": ids.tracks });

    var seekLabel = el("label", { className: "trp-sr", for: ids.seek, text: "Position" });
    var root = el("section", { className: "trp", "aria-label": "Ephemeral audio player" }, [
      el("header", { className: "trp-head" }, [
        el("h2", { className: "trp-h", text: "Ephemeral" }),
        el("p", { className: "trp-sub", text: "Every play wears the tape: each half second " +
          "loses samples, for good, as it is heard." })
      ]),
      el("div", { className: "trp-deck" }, [
        this.nowTitle,
        el("div", { className: "trp-wave-wrap" }, [this.canvas]),
        el("div", { className: "trp-controls" }, [
          this.playBtn, seekLabel, this.seekInput, this.timeOut
        ]),
        el("div", { className: "trp-legend", "aria-hidden": "true" }, [
          el("span", { text: "fresh" }),
          el("span", { className: "trp-scale" }),
          el("span", { text: "worn" })
        ])
      ]),
      this.status,
      el("h3", { className: "trp-h3", id: ids.tracks, text: "Tracks" }),
      this.list,
      this.audio
    ]);
    var stops = [];
    for (var i = 0; i <= 10; i++) stops.push(wearColour(i / 10));
    root.querySelector(".trp-scale").style.background =
      "linear-gradient(90deg, " + stops.join(", ") + ")";
    this.root = root;
    this.setPlayLabel();
    c.appendChild(root);
  };

  Player.prototype.bind = function () {
    var self = this;
    var a = this.audio;

    this.playBtn.addEventListener("click", function () { self.toggle(); });

    this.seekInput.addEventListener("pointerdown", function () { self.scrubbing = true; });
    window.addEventListener("pointerup", function () { self.scrubbing = false; });
    this.seekInput.addEventListener("input", function () {
      self.seek(parseFloat(self.seekInput.value));
    });
    this.seekInput.addEventListener("keydown", function (ev) {
      var steps = { ArrowRight: SEEK_STEP_S, ArrowUp: SEEK_STEP_S, ArrowLeft: -SEEK_STEP_S,
        ArrowDown: -SEEK_STEP_S, PageUp: 6 * SEEK_STEP_S, PageDown: -6 * SEEK_STEP_S };
      if (!(ev.key in steps)) return;
      ev.preventDefault();
      self.seek(a.currentTime + steps[ev.key]);
    });

    this.canvas.addEventListener("click", function (ev) {
      var d = self.duration();
      if (!self.track || !d) return;
      var rect = self.canvas.getBoundingClientRect();
      if (rect.width <= 0) return;
      self.seek((ev.clientX - rect.left) / rect.width * d);
    });

    a.addEventListener("play", function () { self.prev = null; self.setPlayLabel(); self.loop(); });
    a.addEventListener("playing", function () {
      self.setStatus("Playing " + (self.track ? self.track.title : ""));
    });
    a.addEventListener("pause", function () {
      // Post the segment entered just before the pause, then stop sampling.
      self.tick(true);
      self.prev = null;
      self.setPlayLabel();
      if (!a.ended && self.track) self.setStatus("Paused");
    });
    a.addEventListener("ended", function () {
      self.tick(true);
      self.prev = null;
      self.setPlayLabel();
      self.setStatus("Finished " + (self.track ? self.track.title : ""));
    });
    a.addEventListener("seeking", function () { self.resetMarker(); });
    a.addEventListener("seeked", function () { self.prev = null; self.render(); });
    a.addEventListener("emptied", function () { self.resetMarker(); });
    a.addEventListener("waiting", function () { if (self.track) self.setStatus("Buffering…"); });
    a.addEventListener("loadedmetadata", function () { self.updateTime(); });
    a.addEventListener("timeupdate", function () { self.updateTime(); });
    a.addEventListener("error", function () {
      if (!self.track) return;
      var code = a.error ? a.error.code : 0;
      self.setStatus("Cannot play " + self.track.title + " (media error " + code + ")");
    });

    if (window.ResizeObserver) {
      new ResizeObserver(function () { self.render(); }).observe(this.canvas);
    } else {
      window.addEventListener("resize", function () { self.render(); });
    }
  };

  Player.prototype.start = function () {
    var self = this;
    injectCss(this.api);
    fetchJson(this.api + "/").then(function (status) {
      var r = Number(status && status.degradation_rate);
      if (isFinite(r) && r >= 0) { self.rate = r; self.waveDirty = true; self.render(); }
    }).catch(function () { /* keep the default rate */ });
    this.refreshTracks();
    this.timers.push(setInterval(function () { self.tick(false); }, POLL_EVERY_MS));
    this.live = new LiveWear(this.api, {
      onPush: function (play) { self.applyPush(play); },
      // a fresh subscription or a resync: read again what it covers
      onSync: function (filename) {
        if (filename === null) self.refreshTracks(); else self.refreshStats();
      },
      onState: function (open) { self.setPolling(!open); }
    });
    this.live.follow(null);
  };

  /** Poll /tracks and /stats while no live channel is open (and only then). */
  Player.prototype.setPolling = function (on) {
    var self = this;
    if (!on) { this.polling.forEach(clearInterval); this.polling = []; return; }
    if (this.polling.length) return;
    this.polling.push(setInterval(function () { self.refreshTracks(); }, TRACKS_EVERY_MS));
    this.polling.push(setInterval(function () { self.refreshStats(); }, STATS_EVERY_MS));
  };

  /** One counted play pushed by the server: update the list and repaint the waveform. */
  Player.prototype.applyPush = function (play) {
    this.pushes++;
    var t = this.tracks.find(function (x) { return x.filename === play.filename; });
    if (!t) { this.refreshTracks(); return; }   // a track this page has not listed yet
    t.overall_degradation = play.overall_degradation;
    t.total_streams = play.total_streams;
    this.renderTracks();
    if (!this.track || this.track.filename !== play.filename) return;
    var index = Number(play.segment_index);
    if (!(index >= 0)) return;
    var counts = this.counts.slice();
    while (counts.length <= index) counts.push(0);
    counts[index] = Math.max(counts[index] || 0, Number(play.play_count) || 0);
    this.setCounts(counts);
  };

  Player.prototype.destroy = function () {
    this.timers.forEach(clearInterval);
    this.timers = [];
    this.setPolling(false);
    if (this.live) this.live.close();
    this.audio.pause();
    this.audio.removeAttribute("src");
    this.audio.load();
    cancelAnimationFrame(this.frame);
  };

  Player.prototype.setStatus = function (text) {
    if (this.status.textContent !== text) this.status.textContent = text;
  };

  Player.prototype.setPlayLabel = function () {
    var playing = !this.audio.paused;
    this.playBtn.setAttribute("aria-label", playing ? "Pause" : "Play");
    this.playBtn.setAttribute("data-state", playing ? "playing" : "paused");
    this.playIcon.textContent = playing ? "❚❚" : "▶";
  };

  // ---- track list ------------------------------------------------------------

  Player.prototype.refreshTracks = function () {
    var self = this;
    return fetchJson(this.api + "/tracks").then(function (tracks) {
      self.tracks = Array.isArray(tracks) ? tracks : [];
      self.renderTracks();
      if (self.track) {
        var still = self.tracks.find(function (t) { return t.filename === self.track.filename; });
        if (!still) {
          self.setStatus(self.track.title + " is gone from the server");
          self.deselect();
        } else {
          // Keep the selected track's object: requests in flight compare it.
          Object.keys(still).forEach(function (k) { self.track[k] = still[k]; });
          self.tracks[self.tracks.indexOf(still)] = self.track;
        }
      } else if (!self.tracks.length) {
        self.setStatus("No tracks on the server yet");
      } else if (/^(Loading|Cannot reach|No tracks)/.test(self.status.textContent)) {
        self.setStatus(self.tracks.length + (self.tracks.length === 1 ? " track" : " tracks") +
          ": choose one to play");
      }
    }).catch(function (err) {
      self.setStatus("Cannot reach the server at " + self.api + ": " + err.message);
    });
  };

  Player.prototype.renderTracks = function () {
    var self = this;
    var seen = new Set();
    this.tracks.forEach(function (t, i) {
      seen.add(t.filename);
      var row = self.rows.get(t.filename);
      if (!row) {
        var title = el("span", { className: "trp-track-title" });
        var meta = el("span", { className: "trp-track-meta" });
        var button = el("button", { type: "button", className: "trp-track",
          "data-testid": "track-button", "aria-pressed": "false" }, [title, meta]);
        var li = el("li", { className: "trp-row", "data-testid": "track-row",
          "data-filename": t.filename }, [button]);
        button.addEventListener("click", function () { self.select(t.filename); });
        row = { li: li, button: button, title: title, meta: meta };
        self.rows.set(t.filename, row);
      }
      row.title.textContent = t.title || t.filename;
      row.meta.textContent = fmtTime(t.duration) + " · " + fmtPercent(t.overall_degradation) +
        " worn · " + (t.total_streams || 0) + (t.total_streams === 1 ? " stream" : " streams");
      row.li.setAttribute("data-degradation", String(t.overall_degradation));
      row.li.setAttribute("data-streams", String(t.total_streams || 0));
      var selected = !!(self.track && self.track.filename === t.filename);
      row.button.setAttribute("aria-pressed", selected ? "true" : "false");
      // Keep DOM order equal to the server's order without replacing nodes (focus stays).
      if (self.list.children[i] !== row.li) self.list.insertBefore(row.li, self.list.children[i] || null);
    });
    this.rows.forEach(function (row, name) {
      if (!seen.has(name)) { row.li.remove(); self.rows.delete(name); }
    });
  };

  // ---- selection -------------------------------------------------------------

  Player.prototype.select = function (filename) {
    var self = this;
    var track = this.tracks.find(function (t) { return t.filename === filename; });
    if (!track) return;
    if (this.track && this.track.filename === filename) { this.toggle(); return; }
    this.audio.pause();
    this.prev = null;
    this.resetMarker();
    this.track = track;
    this.meta = { duration: Number(track.duration) || 0, segmentDuration: 0.5,
      totalSegments: Math.max(1, Math.ceil((Number(track.duration) || 0) / 0.5)) };
    this.peaks = [];
    this.counts = [];
    this.posted = [];
    this.acked = 0;
    this.waveDirty = true;
    this.renderTracks();
    if (this.live) this.live.follow(filename);
    this.nowTitle.textContent = track.title || track.filename;
    this.audio.src = this.api + "/stream/" + encodeURIComponent(filename);
    this.playBtn.disabled = false;
    this.seekInput.disabled = false;
    this.setStatus("Loading " + (track.title || filename) + "…");
    this.render();
    var enc = encodeURIComponent(filename);
    Promise.all([
      fetchJson(this.api + "/waveform/" + enc).then(function (peaks) {
        if (self.track !== track) return;
        self.peaks = Array.isArray(peaks) ? peaks : [];
        self.waveDirty = true;
      }),
      this.refreshStats()
    ]).then(function () {
      if (self.track !== track) return;
      self.render();
      if (self.audio.paused) self.setStatus(track.title + ": press Play");
    }).catch(function (err) {
      if (self.track === track) self.setStatus("Cannot load " + track.title + ": " + err.message);
    });
  };

  Player.prototype.deselect = function () {
    this.audio.pause();
    this.audio.removeAttribute("src");
    this.audio.load();
    this.track = null;
    this.meta = null;
    this.peaks = [];
    this.counts = [];
    this.playBtn.disabled = true;
    this.seekInput.disabled = true;
    if (this.live) this.live.follow(null);
    this.nowTitle.textContent = "No track selected";
    this.waveDirty = true;
    this.renderTracks();
    this.render();
  };

  Player.prototype.refreshStats = function () {
    var self = this;
    var track = this.track;
    if (!track) return Promise.resolve();
    var seqAtRequest = this.degradeSeq;
    var pushesAtRequest = this.pushes;
    return fetchJson(this.api + "/stats/" + encodeURIComponent(track.filename)).then(function (s) {
      if (self.track !== track) return;
      var server = Array.isArray(s.segment_play_counts) ? s.segment_play_counts.slice() : [];
      if (self.degradeSeq !== seqAtRequest || self.pushes !== pushesAtRequest) {
        // A /degrade answer or a push came while this request was in flight: it may be newer.
        server = server.map(function (n, i) { return Math.max(n, self.counts[i] || 0); });
      }
      self.meta = {
        duration: Number(s.duration) || self.meta.duration,
        segmentDuration: Number(s.segment_duration) || 0.5,
        totalSegments: Number(s.total_segments) || server.length || 1
      };
      self.setCounts(server);
      var row = self.rows.get(track.filename);
      if (row) {
        track.overall_degradation = s.overall_degradation;
        track.total_streams = s.total_streams;
        self.renderTracks();
      }
    }).catch(function (err) {
      if (self.track === track && err.status === 404) {
        self.setStatus(track.title + " is gone from the server");
        self.deselect();
      }
    });
  };

  Player.prototype.setCounts = function (counts) {
    var same = counts.length === this.counts.length &&
      counts.every(function (n, i) { return n === this.counts[i]; }, this);
    if (same) return;
    this.counts = counts;
    this.canvas.setAttribute("data-counts", counts.join(","));
    this.waveDirty = true;
    this.render();
  };

  // ---- transport -------------------------------------------------------------

  Player.prototype.duration = function () {
    var d = this.audio.duration;
    if (isFinite(d) && d > 0) return d;
    return this.meta ? this.meta.duration : 0;
  };

  Player.prototype.toggle = function () {
    var self = this;
    if (!this.track) return;
    if (this.audio.paused) {
      var p = this.audio.play();
      if (p && p.catch) {
        p.catch(function (err) {
          self.setStatus("The browser refused to play: " + err.message);
        });
      }
    } else {
      this.audio.pause();
    }
  };

  Player.prototype.seek = function (t) {
    var d = this.duration();
    if (!this.track || !isFinite(t)) return;
    t = Math.max(0, d ? Math.min(t, d) : t);
    this.resetMarker();
    this.audio.currentTime = t;
    this.updateTime(t);
    this.render();
  };

  Player.prototype.resetMarker = function () {
    this.lastPosted = null;
    this.prev = null;
  };

  Player.prototype.segmentAt = function (t) {
    var m = this.meta;
    if (!m) return 0;
    var i = Math.floor(t / m.segmentDuration + 1e-9);
    return Math.max(0, Math.min(i, m.totalSegments - 1));
  };

  /**
   * Sample the playhead (every POLL_EVERY_MS while playing) and post each segment
   * entered by continuous playback. A seek (the "seeking" event, or a jump that
   * wall-clock time cannot explain) resets the marker: the segment under the new
   * position is posted once playback moves on there, the ones jumped over never.
   */
  Player.prototype.tick = function (final) {
    var a = this.audio;
    if (!this.track || !this.meta) return;
    if (a.seeking) { this.resetMarker(); return; }
    if (a.paused && !final) return;
    var t = a.currentTime;
    var now = performance.now();
    var prev = this.prev;
    this.prev = { t: t, now: now };
    if (!prev) return;
    var dt = t - prev.t;
    var wall = (now - prev.now) / 1000 * (a.playbackRate || 1);
    if (dt < 0 || dt > wall + JUMP_SLACK_S) { this.lastPosted = null; return; }
    if (dt === 0) return;
    var first = this.segmentAt(prev.t);
    var last = this.segmentAt(t);
    if (this.lastPosted !== null && this.lastPosted >= first) first = this.lastPosted + 1;
    for (var i = first; i <= last; i++) this.postSegment(i);
    if (last >= first) this.lastPosted = last;
    this.updateTime();
  };

  Player.prototype.postSegment = function (index) {
    var self = this;
    var track = this.track;
    this.posted.push(index);
    if (this.posted.length > MAX_LOG) this.posted.splice(0, this.posted.length - MAX_LOG);
    this.pending++;
    var url = this.api + "/degrade/" + encodeURIComponent(track.filename);
    this.chain = this.chain.then(function () {
      return fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ segment_index: index })
      }).then(function (res) {
        if (res.status === 429 || res.status === 503) {
          console.info("taperoom: wear of segment " + index + " not recorded (HTTP " +
            res.status + ")");
          return null;
        }
        if (!res.ok) {
          console.warn("taperoom: POST " + url + " answered HTTP " + res.status);
          return null;
        }
        return res.json();
      }).then(function (body) {
        self.degradeSeq++;
        if (!body || self.track !== track) return;
        self.acked++;
        var counts = self.counts.slice();
        while (counts.length <= index) counts.push(0);
        counts[index] = Math.max(counts[index] || 0, Number(body.play_count) || 0);
        self.setCounts(counts);
      }).catch(function (err) {
        console.warn("taperoom: POST " + url + " failed: " + err.message);
      }).then(function () { self.pending--; });
    });
  };

  Player.prototype.updateTime = function (at) {
    var t = at === undefined ? this.audio.currentTime : at;
    var d = this.duration();
    this.timeOut.textContent = fmtTime(t) + " / " + fmtTime(d);
    if (String(this.seekInput.max) !== String(d)) this.seekInput.max = String(d || 0);
    if (!this.scrubbing) this.seekInput.value = String(t);
    this.seekInput.setAttribute("aria-valuetext", fmtTime(t) + " of " + fmtTime(d));
  };

  // ---- drawing ---------------------------------------------------------------

  Player.prototype.loop = function () {
    var self = this;
    cancelAnimationFrame(this.frame);
    var step = function () {
      self.render();
      if (!self.audio.paused) self.frame = requestAnimationFrame(step);
    };
    this.frame = requestAnimationFrame(step);
  };

  Player.prototype.wearOf = function (segment) {
    return Math.min((this.counts[segment] || 0) * this.rate, 100) / 100;
  };

  /** Draw the waveform, one colour per segment, into the offscreen canvas. */
  Player.prototype.renderWave = function (w, h) {
    var off = this.offscreen;
    off.width = w;
    off.height = h;
    var ctx = off.getContext("2d");
    ctx.clearRect(0, 0, w, h);
    this.waveDirty = false;
    if (!this.meta) return;
    var dpr = window.devicePixelRatio || 1;
    var strip = Math.round(5 * dpr);
    var gap = Math.round(3 * dpr);
    var waveH = Math.max(1, h - strip - gap);
    var mid = waveH / 2;
    var n = this.peaks.length;
    var d = this.meta.duration || 1;
    if (n) {
      var cache = {};
      for (var i = 0; i < n; i++) {
        var p = this.peaks[i] || {};
        var lo = Math.max(-1, Math.min(1, Number(p.min) || 0));
        var hi = Math.max(-1, Math.min(1, Number(p.max) || 0));
        var x0 = Math.floor(i * w / n);
        var x1 = Math.max(x0 + 1, Math.floor((i + 1) * w / n));
        var y0 = mid - hi * (mid - 1);
        var y1 = mid - lo * (mid - 1);
        var seg = this.segmentAt((i + 0.5) / n * d);
        var colour = cache[seg] || (cache[seg] = wearColour(this.wearOf(seg)));
        ctx.fillStyle = colour;
        ctx.fillRect(x0, Math.floor(y0), x1 - x0, Math.max(1, Math.ceil(y1 - y0)));
      }
    }
    // Wear strip: one cell per segment, so quiet passages show their wear too.
    var total = this.meta.totalSegments;
    var segW = w * this.meta.segmentDuration / d;
    for (var s = 0; s < total; s++) {
      var sx0 = Math.floor(s * segW);
      var sx1 = Math.min(w, Math.max(sx0 + 1, Math.floor((s + 1) * segW)));
      ctx.fillStyle = wearColour(this.wearOf(s));
      ctx.fillRect(sx0, h - strip, sx1 - sx0, strip);
    }
  };

  Player.prototype.render = function () {
    var c = this.canvas;
    var dpr = window.devicePixelRatio || 1;
    var w = Math.max(1, Math.round(c.clientWidth * dpr));
    var h = Math.max(1, Math.round(c.clientHeight * dpr));
    if (c.width !== w || c.height !== h) { c.width = w; c.height = h; this.waveDirty = true; }
    if (this.waveDirty) this.renderWave(w, h);
    var ctx = c.getContext("2d");
    ctx.clearRect(0, 0, w, h);
    ctx.drawImage(this.offscreen, 0, 0);
    var d = this.duration();
    if (this.track && d) {
      var x = Math.round(this.audio.currentTime / d * w);
      ctx.fillStyle = "rgba(255, 255, 255, 0.9)";
      ctx.fillRect(Math.min(Math.max(0, x - dpr), w - 2 * dpr), 0, Math.max(1, 2 * dpr), h);
    }
    c.setAttribute("data-drawn", this.peaks.length ? "true" : "false");
    this.updateTime();
  };

  /** A snapshot of what the page believes, for tests and curious consoles. */
  Player.prototype.state = function () {
    return {
      api: this.api,
      filename: this.track ? this.track.filename : null,
      rate: this.rate,
      duration: this.meta ? this.meta.duration : 0,
      segmentDuration: this.meta ? this.meta.segmentDuration : 0,
      totalSegments: this.meta ? this.meta.totalSegments : 0,
      waveformPoints: this.peaks.length,
      counts: this.counts.slice(),
      posted: this.posted.slice(),
      acked: this.acked,
      pending: this.pending,
      live: this.live ? (this.live.open ? this.live.channel.kind : null) : null,
      pushes: this.pushes,
      polling: this.polling.length > 0,
      lastPosted: this.lastPosted,
      currentTime: this.audio.currentTime,
      paused: this.audio.paused,
      tracks: this.tracks.map(function (t) { return t.filename; })
    };
  };

  // ---- mounting --------------------------------------------------------------

  var instances = [];

  function mount(container, options) {
    if (!container || container.hasAttribute("data-taperoom-mounted")) return null;
    var player = new Player(container, options);
    instances.push(player);
    return player;
  }

  function mountAll() {
    var nodes = document.querySelectorAll("#taperoom-player, [data-taperoom-player]");
    Array.prototype.forEach.call(nodes, function (node) { mount(node); });
  }

  window.TaperoomPlayer = {
    mount: mount,
    mountAll: mountAll,
    instances: instances,
    wearColour: wearColour
  };

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", mountAll);
  } else {
    mountAll();
  }
})();
