// One track: its 3-band waveform with the beatgrid, downbeats and hot cues; playing from
// any point; tags, BPM, key and first beat; hot cues; re-analysis; next-track suggestions.
import {html} from './html.js';
import {useEffect, useRef, useState} from 'preact/hooks';
import {api, formatTime} from './api.js';
import {camelot, camelotColour, CAMELOT} from './keys.js';
import {useLatest} from './latest.js';

const CUE_LETTERS = 'ABCDEFGH';
const CUE_COLOURS = ['#ff4444', '#ff9f1c', '#ffd60a', '#2ec4b6', '#3a86ff', '#8338ec', '#ff66c4', '#80ed99'];
// DJ software's band colours: low blue, mid amber, high white.
const BANDS = [['low_freq_amplitude', '#2f6bff'], ['mid_freq_amplitude', '#ffa630'], ['high_freq_amplitude', '#f4f4f4']];

function bandValues(wf, name) {
  const v = wf && wf[name];
  return Array.isArray(v) ? v : [];
}

export function drawWaveform(canvas, {wf, beats, downbeats, cues, duration, position}) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr);
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.fillStyle = '#101216'; ctx.fillRect(0, 0, w, h);
  const mid = h / 2;
  const drawn = {bars: 0, beats: 0, downbeats: 0, cues: 0};
  if (wf) {
    for (const [name, colour] of BANDS) {
      const values = bandValues(wf, name);
      if (!values.length) continue;
      ctx.fillStyle = colour;
      const step = values.length / w;
      for (let x = 0; x < w; x++) {
        let peak = 0;
        const a = Math.floor(x * step), b = Math.max(a + 1, Math.floor((x + 1) * step));
        for (let i = a; i < b && i < values.length; i++) peak = Math.max(peak, values[i]);
        const bar = Math.min(1, peak) * (mid - 2);
        if (bar > 0.2) { ctx.fillRect(x, mid - bar, 1, bar * 2); drawn.bars++; }
      }
    }
  }
  if (duration > 0) {
    const xOf = (t) => (t / duration) * w;
    ctx.fillStyle = 'rgba(255,255,255,0.28)';
    for (const t of beats || []) { ctx.fillRect(Math.round(xOf(t)), 0, 1, 10); ctx.fillRect(Math.round(xOf(t)), h - 10, 1, 10); drawn.beats++; }
    ctx.fillStyle = 'rgba(255,60,60,0.9)';
    for (const t of downbeats || []) { ctx.fillRect(Math.round(xOf(t)), 0, 2, h); drawn.downbeats++; }
    for (const c of cues || []) {
      const x = Math.round(xOf(c.position));
      ctx.fillStyle = c.color || '#ff4444';
      ctx.fillRect(x, 0, 2, h);
      ctx.beginPath(); ctx.moveTo(x, 0); ctx.lineTo(x + 12, 0); ctx.lineTo(x, 14); ctx.fill();
      ctx.fillStyle = '#000'; ctx.font = 'bold 10px system-ui';
      ctx.fillText(CUE_LETTERS[c.cue_index] || '?', x + 2, 9);
      drawn.cues++;
    }
    if (position !== null && position !== undefined) {
      ctx.fillStyle = '#fff'; ctx.fillRect(Math.round(xOf(position)), 0, 2, h);
    }
  }
  canvas.dataset.drawn = JSON.stringify(drawn);
}

function formOf(track) {
  return {title: track.title || '', artist: track.artist || '', album: track.album || '',
    genre: track.genre || '', bpm: track.bpm ?? '', rating: track.rating || 0,
    energy_level: track.energy_level ?? '',
    camelot: camelot(track.musical_key, track.mode)};
}

function Editor({track, onSaved, notify}) {
  // filled at once from the track (typing may start before an effect would run), and
  // again only for another track or a new analysis
  const [form, setForm] = useState(() => formOf(track));
  const shown = useRef(`${track.id} ${track.date_analyzed}`);
  useEffect(() => {
    const now = `${track.id} ${track.date_analyzed}`;
    if (now !== shown.current) { shown.current = now; setForm(formOf(track)); }
  }, [track.id, track.date_analyzed]);
  const set = (k) => (e) => setForm({...form, [k]: e.target.value});
  const save = async (e) => {
    e.preventDefault();
    const body = {title: form.title, artist: form.artist, album: form.album, genre: form.genre,
      rating: Number(form.rating) || 0,
      bpm: form.bpm === '' ? null : Number(form.bpm),
      energy_level: form.energy_level === '' ? null : Number(form.energy_level)};
    const k = CAMELOT.find((c) => c.code === form.camelot);
    if (k) { body.musical_key = k.key; body.mode = k.mode; }
    try {
      await api(`/api/tracks/${track.id}`, {method: 'PUT', body});
      notify('Track saved'); onSaved();
    } catch (err) { notify(err.message, true); }
  };
  return html`<form class="editor" onSubmit=${save} aria-label="Edit track">
    <label>Title<input value=${form.title} onInput=${set('title')} /></label>
    <label>Artist<input value=${form.artist} onInput=${set('artist')} /></label>
    <label>Album<input value=${form.album} onInput=${set('album')} /></label>
    <label>Genre<input value=${form.genre} onInput=${set('genre')} /></label>
    <label>BPM<input type="number" step="0.01" min="1" max="999" value=${form.bpm} onInput=${set('bpm')} /></label>
    <label>Key<select value=${form.camelot} onChange=${set('camelot')}>
      <option value="">—</option>
      ${CAMELOT.map((c) => html`<option value=${c.code}>${c.code} (${c.name})</option>`)}
    </select></label>
    <label>Energy<input type="number" min="0" max="10" value=${form.energy_level} onInput=${set('energy_level')} /></label>
    <label>Rating<select value=${form.rating} onChange=${set('rating')}>
      ${[0, 1, 2, 3, 4, 5].map((r) => html`<option value=${r}>${r ? '★'.repeat(r) : 'none'}</option>`)}
    </select></label>
    <button type="submit">Save tags</button>
  </form>`;
}

// A cue's name as it is typed: the page re-renders meanwhile (toasts, live events), which
// must not put the stored name back over the typing; Enter or leaving the field saves it.
function CueName({letter, name, onSave}) {
  const [value, setValue] = useState(name || '');
  const [typing, setTyping] = useState(false);
  useEffect(() => { if (!typing) setValue(name || ''); }, [name, typing]);
  return html`<input aria-label=${`Name of cue ${letter}`} value=${value} placeholder="name"
    onFocus=${() => setTyping(true)} onBlur=${() => setTyping(false)}
    onInput=${(e) => setValue(e.target.value)}
    onChange=${(e) => { if (e.target.value !== (name || '')) onSave(e.target.value); }} />`;
}

function HotCues({track, cues, audio, reload, notify}) {
  const byIndex = new Map(cues.filter((c) => c.source === 'user').map((c) => [c.cue_index, c]));
  const now = () => (audio.current ? audio.current.currentTime : 0);
  const setCue = async (i) => {
    try {
      await api(`/api/tracks/${track.id}/hot-cues/${i}`, {method: 'POST',
        body: {position: Number(now().toFixed(3)), color: CUE_COLOURS[i]}});
      notify(`Hot cue ${CUE_LETTERS[i]} set`); reload();
    } catch (err) { notify(err.message, true); }
  };
  const update = async (i, body) => {
    try { await api(`/api/tracks/${track.id}/hot-cues/${i}`, {method: 'PUT', body}); reload(); }
    catch (err) { notify(err.message, true); }
  };
  const remove = async (i) => {
    try { await api(`/api/tracks/${track.id}/hot-cues/${i}`, {method: 'DELETE'}); reload(); }
    catch (err) { notify(err.message, true); }
  };
  return html`<div class="cues" aria-label="Hot cues">
    ${[...CUE_LETTERS].map((letter, i) => {
      const c = byIndex.get(i);
      if (!c) return html`<div class="cue empty"><button onClick=${() => setCue(i)}
        title="Set at the play position">Set ${letter}</button></div>`;
      return html`<div class="cue" data-cue=${letter} style=${`border-color:${c.color}`}>
        <button class="jump" style=${`background:${c.color}`} onClick=${() => { if (audio.current) { audio.current.currentTime = c.position; audio.current.play(); } }}
          title="Play from this cue">${letter} ${formatTime(c.position)}</button>
        <${CueName} letter=${letter} name=${c.name} onSave=${(name) => update(i, {name})} />
        <input type="color" aria-label=${`Colour of cue ${letter}`} value=${c.color || '#ff4444'}
          onChange=${(e) => update(i, {color: e.target.value})} />
        <button onClick=${() => update(i, {position: Number(now().toFixed(3))})} title="Move to the play position">Move</button>
        <button onClick=${() => remove(i)} aria-label=${`Delete cue ${letter}`}>✕</button>
      </div>`;
    })}
  </div>`;
}

function Suggestions({track, playlist, notify, onOpen}) {
  const [energy, setEnergy] = useState('');
  const [rows, setRows] = useState(null);
  useEffect(() => {
    let live = true;
    setRows(null);
    api(`/api/tracks/${track.id}/suggestions`, {query: {energy, limit: 20}})
      .then((b) => live && setRows(b.data)).catch(() => live && setRows([]));
    return () => { live = false; };
  }, [track.id, energy]);
  const add = async (t) => {
    if (!playlist || playlist.type === 'smart') { notify('Choose a playlist first', true); return; }
    try {
      await api(`/api/playlists/${playlist.id}/tracks`, {method: 'POST', body: {track_ids: [t.id]}});
      notify(`Added to ${playlist.name}`);
      window.dispatchEvent(new CustomEvent('playlist-changed', {detail: playlist.id}));
    } catch (err) { notify(err.message, true); }
  };
  return html`<section class="suggestions" aria-label="Next track">
    <h3>Next track <select aria-label="Energy direction" value=${energy} onChange=${(e) => setEnergy(e.target.value)}>
      <option value="">any energy</option><option value="up">energy up</option>
      <option value="same">same energy</option><option value="down">energy down</option>
    </select></h3>
    ${rows === null ? html`<p>…</p>` : rows.length === 0 ? html`<p class="muted">No suggestions.</p>` : html`<ul>
      ${rows.map((s) => html`<li class="suggestion" data-track-id=${s.track.id}>
        <span class="key" style=${`background:${camelotColour(s.track.musical_key, s.track.mode)}`}>${camelot(s.track.musical_key, s.track.mode)}</span>
        <button class="link" onClick=${() => onOpen(s.track)}>${s.track.artist ? s.track.artist + ' – ' : ''}${s.track.title}</button>
        <span class="muted">${s.track.bpm ? s.track.bpm.toFixed(1) : ''}</span>
        <small class="reasons">${(s.reasons || []).join('; ')}</small>
        <button onClick=${() => add(s.track)} aria-label=${`Add ${s.track.title} to the playlist`}>+ Add</button>
      </li>`)}
    </ul>`}
  </section>`;
}

export function TrackView({trackId, playlist, notify, onClose, onOpen, onChanged}) {
  const [track, setTrack] = useState(null);
  const [wf, setWf] = useState(null);
  const [grid, setGrid] = useState({beats: [], downbeats: []});
  const [position, setPosition] = useState(0);
  const [firstBeat, setFirstBeat] = useState('');
  const canvas = useRef(null);
  const audio = useRef(null);
  const only = useLatest();
  // changes in quick succession: only the last answer is shown
  const load = () => only(api(`/api/tracks/${trackId}`), (b) => {
    setTrack(b.data);
    setFirstBeat(b.data.first_beat_offset ?? '');
  });
  useEffect(() => {
    let live = true;
    setTrack(null); setWf(null); setGrid({beats: [], downbeats: []});
    load().catch((e) => notify(e.message, true));
    api(`/api/tracks/${trackId}/waveform`, {query: {zoom: 1}}).then((b) => live && setWf(b.data)).catch(() => {});
    Promise.all([
      api(`/api/tracks/${trackId}/beats`).then((b) => b.data.beats).catch(() => []),
      api(`/api/tracks/${trackId}/downbeats`).then((b) => b.data.downbeats).catch(() => []),
    ]).then(([beats, downbeats]) => live && setGrid({beats, downbeats}));
    return () => { live = false; };
  }, [trackId]);
  const duration = track ? (track.duration_seconds || (audio.current && audio.current.duration) || 0) : 0;
  useEffect(() => {
    if (!canvas.current || !track) return;
    drawWaveform(canvas.current, {wf, beats: grid.beats, downbeats: grid.downbeats,
      cues: (track.hotCues || []).filter((c) => c.source === 'user'), duration, position});
  }, [wf, grid, track, position]);
  useEffect(() => {
    const redraw = () => canvas.current && track && drawWaveform(canvas.current, {wf, beats: grid.beats,
      downbeats: grid.downbeats, cues: (track.hotCues || []).filter((c) => c.source === 'user'), duration, position});
    window.addEventListener('resize', redraw);
    return () => window.removeEventListener('resize', redraw);
  });
  if (!track) return html`<aside class="trackview" aria-label="Track"><p>Loading…</p></aside>`;
  const seek = (ev) => {
    const r = canvas.current.getBoundingClientRect();
    const t = ((ev.clientX - r.left) / r.width) * duration;
    if (audio.current) { audio.current.currentTime = t; audio.current.play().catch(() => {}); }
    setPosition(t);
  };
  const seekKey = (ev) => {
    if (!audio.current) return;
    if (ev.key === 'ArrowRight') audio.current.currentTime += 5;
    else if (ev.key === 'ArrowLeft') audio.current.currentTime -= 5;
    else if (ev.key === ' ') { audio.current.paused ? audio.current.play() : audio.current.pause(); }
    else return;
    ev.preventDefault();
  };
  const saveFirstBeat = async (value) => {
    try {
      await api(`/api/tracks/${track.id}/first-beat-offset`, {method: 'POST', body: {first_beat_offset: Number(value)}});
      notify('First beat set'); await load();
    } catch (err) { notify(err.message, true); }
  };
  const reanalyse = async () => {
    try {
      await api('/api/analysis/request', {method: 'POST', body: {track_id: track.id, force: true, priority: 'high'}});
      notify('Analysis queued');
    } catch (err) { notify(err.message, true); }
  };
  return html`<aside class="trackview" aria-label="Track">
    <header>
      <h2>${track.artist ? track.artist + ' – ' : ''}${track.title || track.relative_path}</h2>
      <span class="key big" style=${`background:${camelotColour(track.musical_key, track.mode)}`}>${camelot(track.musical_key, track.mode) || '—'}</span>
      <span class="bpm">${track.bpm ? track.bpm.toFixed(2) + ' BPM' : 'no BPM'}</span>
      <button onClick=${onClose} aria-label="Close the track">✕</button>
    </header>
    <canvas ref=${canvas} class="waveform" tabindex="0" aria-label="Waveform: click to play from there, arrows seek, space plays"
      onClick=${seek} onKeyDown=${seekKey}></canvas>
    <p class="muted small">${wf ? '' : 'No waveform yet (not analysed). '}${grid.beats.length} beats, ${grid.downbeats.length} downbeats</p>
    <audio ref=${audio} controls preload="metadata" src=${`/api/tracks/${track.id}/audio`}
      onTimeUpdate=${(e) => setPosition(e.target.currentTime)}></audio>
    <${HotCues} track=${track} cues=${track.hotCues || []} audio=${audio} reload=${() => load().then(onChanged)} notify=${notify} />
    <div class="grid-edit">
      <label>First beat (s)<input type="number" step="0.001" min="0" value=${firstBeat}
        onInput=${(e) => setFirstBeat(e.target.value)} /></label>
      <button onClick=${() => saveFirstBeat(firstBeat)}>Set first beat</button>
      <button onClick=${() => saveFirstBeat(audio.current ? audio.current.currentTime.toFixed(3) : 0)}>First beat here</button>
      <button onClick=${reanalyse}>Re-analyse</button>
    </div>
    <${Editor} track=${track} onSaved=${() => load().then(onChanged)} notify=${notify} />
    <${Suggestions} track=${track} playlist=${playlist} notify=${notify} onOpen=${onOpen} />
  </aside>`;
}
