// Playlists: crates and playlists in a tree (tracks dropped on a playlist are added), one
// playlist's tracks reordered by dragging, export and import, the smart-playlist editor.
import {html} from './html.js';
import {useEffect, useState} from 'preact/hooks';
import {api, formatTime} from './api.js';
import {camelot, camelotColour} from './keys.js';
import {useBurst} from './bursts.js';
import {useLatest} from './latest.js';

const DRAG = 'application/x-taperoom-tracks';
// How long the open playlist waits after a track changed before it reads itself again (ms).
const TRACKS_CHANGED_MS = 300;

function PlaylistItem({p, current, onPick, notify}) {
  const [over, setOver] = useState(false);
  const drop = async (ev) => {
    ev.preventDefault(); setOver(false);
    const raw = ev.dataTransfer.getData(DRAG);
    if (!raw) return;
    if (p.type === 'smart' || p.is_readonly) { notify(`${p.name} takes no tracks by hand`, true); return; }
    const ids = JSON.parse(raw);
    let added = 0;
    for (const id of ids) {  // one by one: a track already there (409) does not stop the others
      try { const r = await api(`/api/playlists/${p.id}/tracks`, {method: 'POST', body: {track_ids: [id]}}); added += r.added_count; }
      catch (err) { if (err.status !== 409) { notify(err.message, true); return; } }
    }
    notify(`${added} track${added === 1 ? '' : 's'} added to ${p.name}`);
    window.dispatchEvent(new CustomEvent('playlist-changed', {detail: p.id}));
  };
  const icon = p.type === 'smart' ? '⚙' : p.type === 'session' ? '🕘' : '♫';
  return html`<li>
    <button class=${'pl' + (current && current.id === p.id ? ' current' : '') + (over ? ' over' : '')}
      data-playlist-id=${p.id} onClick=${() => onPick(p)}
      onDragOver=${(e) => { if (e.dataTransfer.types.includes(DRAG)) { e.preventDefault(); setOver(true); } }}
      onDragLeave=${() => setOver(false)} onDrop=${drop}>
      <span aria-hidden="true">${icon}</span> ${p.name}
      ${p.track_count !== undefined ? html` <small class="muted">${p.track_count}</small>` : ''}
    </button></li>`;
}

function Folder({f, current, onPick, notify}) {
  return html`<li class="crate"><details open><summary>📁 ${f.name}</summary><ul>
    ${f.folders.map((c) => html`<${Folder} f=${c} current=${current} onPick=${onPick} notify=${notify} />`)}
    ${f.playlists.map((p) => html`<${PlaylistItem} p=${p} current=${current} onPick=${onPick} notify=${notify} />`)}
  </ul></details></li>`;
}

export function PlaylistTree({current, onPick, notify, version, onSmart}) {
  const [tree, setTree] = useState({folders: [], playlists: []});
  const [counts, setCounts] = useState({});
  const [name, setName] = useState('');
  const only = useLatest();  // reloads after events and changes: the last one asked is shown
  const load = async () => {
    await only(Promise.all([api('/api/playlists/folders'), api('/api/playlists')]), ([t, all]) => {
      setTree(t);
      setCounts(Object.fromEntries(all.playlists.map((p) => [p.id, p.track_count])));
    });
  };
  useEffect(() => { load().catch((e) => notify(e.message, true)); }, [version]);
  useEffect(() => {
    const on = () => load().catch(() => {});
    window.addEventListener('playlist-changed', on);
    return () => window.removeEventListener('playlist-changed', on);
  }, []);
  const withCount = (p) => ({...p, track_count: counts[p.id]});
  const mapFolder = (f) => ({...f, folders: f.folders.map(mapFolder), playlists: f.playlists.map(withCount)});
  const create = async (e) => {
    e.preventDefault();
    if (!name.trim()) return;
    try {
      const p = await api('/api/playlists', {method: 'POST', body: {name: name.trim()}});
      setName(''); await load(); onPick(p); notify(`Playlist ${p.name} created`);
    } catch (err) { notify(err.message, true); }
  };
  const crate = async () => {
    const n = prompt('Name of the new crate');
    if (!n) return;
    try { await api('/api/playlists/folders', {method: 'POST', body: {name: n}}); load(); }
    catch (err) { notify(err.message, true); }
  };
  const startSession = async () => {
    try { const p = await api('/api/playlists/sessions/start', {method: 'POST', body: {}}); await load(); onPick(p); }
    catch (err) { notify(err.message, true); }
  };
  const importFile = async (ev) => {
    const file = ev.target.files[0];
    if (!file) return;
    const body = new FormData();
    body.append('file', file);
    ev.target.value = '';  // the same file may be chosen again
    try {
      const r = await api('/api/import', {method: 'POST', body});
      const skipped = r.unmatched_count ? `, ${r.unmatched_count} not in the library` : '';
      notify(`Imported ${file.name}: ${r.imported.playlists} playlist${r.imported.playlists === 1 ? '' : 's'}, ${r.imported.entries} tracks${skipped}`);
      await load();
    } catch (err) { notify(err.message, true); }
  };
  return html`<nav class="playlists" aria-label="Playlists">
    <h2>Playlists</h2>
    <form onSubmit=${create} class="inline">
      <input aria-label="New playlist name" placeholder="New playlist" value=${name} onInput=${(e) => setName(e.target.value)} />
      <button type="submit">Create</button>
    </form>
    <div class="tools">
      <button onClick=${onSmart}>New smart playlist</button>
      <button onClick=${crate}>New crate</button>
      <button onClick=${startSession}>Start session</button>
      <label class="filebtn">Import<input type="file" accept=".m3u,.m3u8,.xml" onChange=${importFile}
        aria-label="Import a playlist file (M3U, M3U8 or rekordbox XML)" /></label>
    </div>
    <ul class="tree">
      ${tree.folders.map((f) => html`<${Folder} f=${mapFolder(f)} current=${current} onPick=${onPick} notify=${notify} />`)}
      ${tree.playlists.map((p) => html`<${PlaylistItem} p=${withCount(p)} current=${current} onPick=${onPick} notify=${notify} />`)}
    </ul>
  </nav>`;
}

export function PlaylistView({playlist, notify, onOpen, onClose, onDeleted}) {
  const [detail, setDetail] = useState(null);
  const [dragIndex, setDragIndex] = useState(null);
  // another playlist picked, or this one changed again: only the last answer is shown
  const only = useLatest();
  const load = () => only(api(`/api/playlists/${playlist.id}`), setDetail);
  useEffect(() => { load().catch((e) => notify(e.message, true)); }, [playlist.id]);
  useEffect(() => {  // this playlist changed, or playlists did (null: which ones is not known)
    const on = (e) => { if (e.detail === playlist.id || e.detail === null) load().catch(() => {}); };
    window.addEventListener('playlist-changed', on);
    return () => window.removeEventListener('playlist-changed', on);
  }, [playlist.id]);
  // a track of it changed (tags, analysis, file; a smart playlist's new matches come with
  // playlist:updated): read again, once for a burst of changes
  useBurst('tracks-changed', TRACKS_CHANGED_MS, () => load().catch(() => {}),
    (e) => e.detail === null || (detail && (detail.tracks || []).some((t) => t.track_id === e.detail)));
  if (!detail) return html`<section class="playlist"><p>Loading…</p></section>`;
  const fixed = detail.type !== 'smart' && !detail.is_readonly;
  const entries = detail.tracks || [];
  const reorder = async (from, to) => {
    if (from === to) return;
    const ids = entries.map((e) => e.track_id);
    const [moved] = ids.splice(from, 1);
    ids.splice(to, 0, moved);
    try {
      await api(`/api/playlists/${playlist.id}/tracks/reorder`, {method: 'PUT', body: {track_ids: ids}});
      await load();
    } catch (err) { notify(err.message, true); load(); }
  };
  const move = (i, by) => { const j = i + by; if (j >= 0 && j < entries.length) reorder(i, j); };
  const remove = async (e) => {
    try { await api(`/api/playlists/${playlist.id}/tracks/${e.track_id}`, {method: 'DELETE'}); load(); window.dispatchEvent(new CustomEvent('playlist-changed', {detail: null})); }
    catch (err) { notify(err.message, true); }
  };
  const drop = async (ev, i) => {
    ev.preventDefault();
    if (dragIndex !== null) { const from = dragIndex; setDragIndex(null); await reorder(from, i); return; }
    const raw = ev.dataTransfer.getData(DRAG);
    if (!raw || !fixed) return;
    for (const id of JSON.parse(raw)) {
      try { await api(`/api/playlists/${playlist.id}/tracks`, {method: 'POST', body: {track_ids: [id], position: i}}); }
      catch (err) { if (err.status !== 409) notify(err.message, true); }
    }
    load();
  };
  const del = async () => {
    if (!confirm(`Delete the playlist ${detail.name}?`)) return;
    try { await api(`/api/playlists/${playlist.id}`, {method: 'DELETE'}); onDeleted(); }
    catch (err) { notify(err.message, true); }
  };
  const refresh = async () => {
    try { await api(`/api/playlists/${playlist.id}/refresh`, {method: 'POST'}); load(); } catch (err) { notify(err.message, true); }
  };
  const total = entries.reduce((s, e) => s + (e.track.duration_seconds || 0), 0);
  return html`<section class="playlist" aria-label=${`Playlist ${detail.name}`}>
    <header>
      <h2>${detail.name}</h2>
      <span class="muted">${entries.length} tracks · ${formatTime(total)}${detail.type === 'smart' ? ' · smart' : ''}</span>
      <a class="button" href=${`/api/playlists/${playlist.id}/export?format=m3u8`} download>Export M3U8</a>
      <a class="button" href=${`/api/playlists/${playlist.id}/export?format=rekordbox`} download>Export rekordbox XML</a>
      ${detail.type === 'smart' ? html`<button onClick=${refresh}>Refresh</button>` : ''}
      <button onClick=${del}>Delete</button>
      <button onClick=${onClose} aria-label="Back to the tracks">✕</button>
    </header>
    ${detail.type === 'smart' ? html`<p class="muted">${JSON.stringify(detail.criteria)}</p>` : ''}
    <ol class="entries" onDragOver=${(e) => e.preventDefault()} onDrop=${(e) => drop(e, entries.length)}>
      ${entries.map((e, i) => html`<li key=${e.track_id + ':' + (e.occurrence || 0)} class="entry" data-track-id=${e.track_id}
        draggable=${fixed} onDragStart=${(ev) => { setDragIndex(i); ev.dataTransfer.setData('text/plain', e.track_id); ev.dataTransfer.effectAllowed = 'move'; }}
        onDragOver=${(ev) => ev.preventDefault()} onDrop=${(ev) => { ev.stopPropagation(); drop(ev, i); }}>
        <span class="pos">${i + 1}</span>
        <span class="key" style=${`background:${camelotColour(e.track.musical_key, e.track.mode)}`}>${camelot(e.track.musical_key, e.track.mode)}</span>
        <button class="link" onClick=${() => onOpen(e.track)}>${e.track.artist ? e.track.artist + ' – ' : ''}${e.track.title}</button>
        <span class="muted">${e.track.bpm ? e.track.bpm.toFixed(1) : ''}</span>
        ${fixed ? html`<span class="moves">
          <button onClick=${() => move(i, -1)} aria-label=${`Move ${e.track.title} up`}>↑</button>
          <button onClick=${() => move(i, 1)} aria-label=${`Move ${e.track.title} down`}>↓</button>
          <button onClick=${() => remove(e)} aria-label=${`Remove ${e.track.title}`}>✕</button></span>` : ''}
      </li>`)}
    </ol>
    ${entries.length === 0 ? html`<p class="muted">Drag tracks here or onto the playlist's name.</p>` : ''}
  </section>`;
}

// Smart playlists: a tree of groups (all / any) of rules, the matching tracks shown live.
const FIELDS = [
  ['bpm_min', 'BPM at least', 'number'], ['bpm_max', 'BPM at most', 'number'],
  ['compatible_with_key', 'Mixes with key (8A)', 'text'], ['genres', 'Genre is (comma-separated)', 'list'],
  ['title_contains', 'Title contains', 'text'], ['artist_contains', 'Artist contains', 'text'],
  ['genre_contains', 'Genre contains', 'text'], ['rating_min', 'Rating at least', 'number'],
  ['energy_min', 'Energy at least', 'number'], ['energy_max', 'Energy at most', 'number'],
  ['is_analyzed', 'Analysed', 'bool'], ['played_in_last_days', 'Played in the last days', 'number'],
];

function toCriteria(group) {
  const parts = group.items.map((it) => {
    if (it.items) return toCriteria(it);
    const f = FIELDS.find((x) => x[0] === it.field);
    let v = it.value;
    if (f[2] === 'number') v = Number(v);
    if (f[2] === 'bool') v = v === 'true';
    if (f[2] === 'list') v = String(v).split(',').map((s) => s.trim()).filter(Boolean);
    return {[it.field]: v};
  }).filter((p) => Object.values(p)[0] !== '' && !Number.isNaN(Object.values(p)[0]));
  return {[group.op]: parts};
}

function Group({g, onChange, onRemove, depth}) {
  const set = (i, item) => { const items = [...g.items]; items[i] = item; onChange({...g, items}); };
  const drop = (i) => onChange({...g, items: g.items.filter((_, j) => j !== i)});
  return html`<fieldset class="group" style=${`margin-left:${depth ? 1 : 0}rem`}>
    <legend><select aria-label="Match" value=${g.op} onChange=${(e) => onChange({...g, op: e.target.value})}>
      <option value="all">all of</option><option value="any">any of</option></select>
      ${onRemove ? html`<button type="button" onClick=${onRemove} aria-label="Remove group">✕</button>` : ''}</legend>
    ${g.items.map((it, i) => it.items
      ? html`<${Group} g=${it} depth=${depth + 1} onChange=${(x) => set(i, x)} onRemove=${() => drop(i)} />`
      : html`<div class="rule">
        <select aria-label="Field" value=${it.field} onChange=${(e) => set(i, {...it, field: e.target.value})}>
          ${FIELDS.map((f) => html`<option value=${f[0]}>${f[1]}</option>`)}</select>
        <input aria-label="Value" value=${it.value} onInput=${(e) => set(i, {...it, value: e.target.value})} />
        <button type="button" onClick=${() => drop(i)} aria-label="Remove rule">✕</button></div>`)}
    <button type="button" onClick=${() => onChange({...g, items: [...g.items, {field: 'bpm_min', value: ''}]})}>+ Rule</button>
    <button type="button" onClick=${() => onChange({...g, items: [...g.items, {op: 'any', items: []}]})}>+ Group</button>
  </fieldset>`;
}

export function SmartEditor({notify, onCreated, onClose}) {
  const [name, setName] = useState('');
  const [root, setRoot] = useState({op: 'all', items: [{field: 'bpm_min', value: ''}]});
  const [preview, setPreview] = useState(null);
  const criteria = toCriteria(root);
  const key = JSON.stringify(criteria);
  useEffect(() => {
    let live = true;
    const t = setTimeout(() => {
      api('/api/playlists/smart/preview', {method: 'POST', body: {criteria, limit: 50}})
        .then((r) => live && setPreview(r)).catch((e) => live && setPreview({error: e.message}));
    }, 200);
    return () => { live = false; clearTimeout(t); };
  }, [key]);
  const save = async (e) => {
    e.preventDefault();
    try {
      const p = await api('/api/playlists', {method: 'POST', body: {name: name.trim() || 'Smart playlist', type: 'smart', criteria}});
      notify(`Smart playlist ${p.name} created`); onCreated(p);
    } catch (err) { notify(err.message, true); }
  };
  return html`<section class="smart" aria-label="Smart playlist editor">
    <header><h2>New smart playlist</h2><button onClick=${onClose} aria-label="Close the editor">✕</button></header>
    <form onSubmit=${save}>
      <label>Name<input value=${name} onInput=${(e) => setName(e.target.value)} /></label>
      <${Group} g=${root} depth=${0} onChange=${setRoot} />
      <button type="submit">Save smart playlist</button>
    </form>
    <div class="preview" aria-live="polite">
      ${preview === null ? '…' : preview.error ? html`<p class="error">${preview.error}</p>` : html`
        <p><strong data-field="matches">${preview.count}</strong> matching tracks</p>
        <ul>${preview.tracks.map((t) => html`<li>${t.artist ? t.artist + ' – ' : ''}${t.title} <span class="muted">${t.bpm ? t.bpm.toFixed(1) : ''} ${camelot(t.musical_key, t.mode)}</span></li>`)}</ul>`}
    </div>
  </section>`;
}
