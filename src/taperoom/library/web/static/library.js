// The library's page: a client of the library's public API only.
import {render} from 'preact';
import {useEffect, useRef, useState} from 'preact/hooks';
import {html} from './html.js';
import {api, liveEvents} from './api.js';
import {CAMELOT} from './keys.js';
import {TrackTable} from './tracktable.js';
import {TrackView} from './trackview.js';
import {PlaylistTree, PlaylistView, SmartEditor} from './playlists.js';
import {Folders, Duplicates, Analysis} from './panels.js';
import {isScanEvent, followScans} from './scans.js';

function Filters({filters, setFilters}) {
  const set = (k) => (e) => setFilters({...filters, [k]: e.target.value});
  return html`<div class="filters" role="group" aria-label="Filters">
    <label>BPM <input type="number" min="0" aria-label="BPM from" value=${filters.bpm_min} onInput=${set('bpm_min')} />
      – <input type="number" min="0" aria-label="BPM to" value=${filters.bpm_max} onInput=${set('bpm_max')} /></label>
    <label>Key <select value=${filters.camelot} onChange=${set('camelot')}>
      <option value="">any</option>${CAMELOT.map((c) => html`<option value=${c.code}>${c.code}</option>`)}</select></label>
    <label>Genre <input value=${filters.genre} onInput=${set('genre')} /></label>
    <label>Rating ≥ <select value=${filters.rating_min} onChange=${set('rating_min')}>
      ${['', 1, 2, 3, 4, 5].map((r) => html`<option value=${r}>${r || 'any'}</option>`)}</select></label>
    <label>Analysed <select value=${filters.is_analyzed} onChange=${set('is_analyzed')}>
      <option value="">any</option><option value="true">yes</option><option value="false">no</option></select></label>
  </div>`;
}

function Toasts({items}) {
  return html`<div class="toasts" role="status" aria-live="polite">
    ${items.map((t) => html`<div class=${'toast' + (t.error ? ' error' : '')} key=${t.id}>${t.text}</div>`)}</div>`;
}

function App() {
  const [search, setSearch] = useState('');
  const [filters, setFilters] = useState({bpm_min: '', bpm_max: '', camelot: '', genre: '', rating_min: '', is_analyzed: ''});
  const [sort, setSort] = useState({sort: '', order: 'desc'});
  const [selection, setSelection] = useState(new Set());
  const [open, setOpen] = useState(null);
  const [playlist, setPlaylist] = useState(null);
  const [view, setView] = useState('tracks');   // tracks | playlist | smart | duplicates | analysis
  const [progress, setProgress] = useState({});
  const [version, setVersion] = useState(0);
  const [folderVersion, setFolderVersion] = useState(0);
  const [total, setTotal] = useState(null);
  const [connected, setConnected] = useState(false);
  const [toasts, setToasts] = useState([]);
  const searchBox = useRef(null);
  const bump = useRef(null);

  const notify = (text, error = false) => {
    const id = Math.random();
    setToasts((t) => [...t, {id, text, error}]);
    setTimeout(() => setToasts((t) => t.filter((x) => x.id !== id)), error ? 6000 : 3000);
  };
  const refreshSoon = () => {  // many track events in a row: one reload
    clearTimeout(bump.current);
    bump.current = setTimeout(() => setVersion((v) => v + 1), 400);
  };

  useEffect(() => {
    const on = (e) => setSort(e.detail);
    window.addEventListener('track-sort', on);
    return () => window.removeEventListener('track-sort', on);
  }, []);
  useEffect(() => {
    const scans = followScans(setProgress);
    let opened = false;
    // events sent while the page was not listening are lost: the folders' scans are read
    // when the live connection opens, and when it opens again the lists that those events
    // would have reloaded are reloaded too
    const onState = (on) => {
      setConnected(on);
      if (!on) return;
      if (opened) {
        setVersion((v) => v + 1);
        setFolderVersion((v) => v + 1);
        window.dispatchEvent(new CustomEvent('playlist-changed', {detail: null}));
        window.dispatchEvent(new CustomEvent('duplicates-changed'));
      }
      opened = true;
      scans.read().catch((e) => notify(e.message, true));
    };
    return liveEvents((name, data) => {
      if (isScanEvent(name)) {
        scans.heard(name, data);
        if (name.endsWith(':complete')) { setFolderVersion((v) => v + 1); refreshSoon(); }
      } else if (name.startsWith('library:')) {
        setFolderVersion((v) => v + 1);
        if (name.startsWith('library:media:')) notify(name.endsWith('connected') && !name.endsWith('disconnected') ? 'A drive came back' : 'A drive went away');
      } else if (name.startsWith('track:') || name === 'analysis:complete' || name === 'duplicate:resolved') {
        refreshSoon();
        // which track (null: not known), for the open playlist's entries
        window.dispatchEvent(new CustomEvent('tracks-changed', {detail: (data && data.trackId) || null}));
        if (name === 'duplicate:resolved') window.dispatchEvent(new CustomEvent('duplicates-changed'));
        if (name === 'analysis:complete') window.dispatchEvent(new CustomEvent('analysis-event', {detail: name}));
      } else if (name.startsWith('analysis:')) {
        window.dispatchEvent(new CustomEvent('analysis-event', {detail: name}));
      } else if (name.startsWith('duplicate:')) {
        window.dispatchEvent(new CustomEvent('duplicates-changed'));
      } else if (name === 'playlist:updated') {
        window.dispatchEvent(new CustomEvent('playlist-changed', {detail: data.playlistId}));
      }
    }, onState);
  }, []);
  useEffect(() => {
    const onKey = (e) => {
      if (e.key === '/' && document.activeElement.tagName !== 'INPUT' && document.activeElement.tagName !== 'TEXTAREA') {
        e.preventDefault(); searchBox.current && searchBox.current.focus();
      } else if (e.key === 'Escape' && open) setOpen(null);
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [open]);

  const k = CAMELOT.find((c) => c.code === filters.camelot);
  const query = {search: search.trim(),  // every keystroke asks; stale answers are dropped
    sort: sort.sort, order: sort.order, bpm_min: filters.bpm_min,
    bpm_max: filters.bpm_max, genre: filters.genre, rating_min: filters.rating_min,
    is_analyzed: filters.is_analyzed, key: k ? k.key : '', mode: k ? k.mode : ''};
  const pickPlaylist = (p) => { setPlaylist(p); setView('playlist'); };
  const openTrack = (t) => setOpen(t.id);

  let main;
  if (view === 'playlist' && playlist) {
    main = html`<${PlaylistView} playlist=${playlist} notify=${notify} onOpen=${openTrack}
      onClose=${() => setView('tracks')} onDeleted=${() => { setPlaylist(null); setView('tracks'); window.dispatchEvent(new CustomEvent('playlist-changed', {detail: null})); }} />`;
  } else if (view === 'smart') {
    main = html`<${SmartEditor} notify=${notify} onClose=${() => setView('tracks')}
      onCreated=${(p) => { window.dispatchEvent(new CustomEvent('playlist-changed', {detail: null})); pickPlaylist(p); }} />`;
  } else if (view === 'duplicates') {
    main = html`<${Duplicates} notify=${notify} />`;
  } else if (view === 'analysis') {
    main = html`<${Analysis} notify=${notify} version=${version} />`;
  } else {
    main = html`<section class="tracks" aria-label="Library">
      <${Filters} filters=${filters} setFilters=${setFilters} />
      <${TrackTable} query=${query} selection=${selection} version=${version} onTotal=${setTotal}
        onSelect=${(s) => setSelection(s)} onOpen=${openTrack} />
    </section>`;
  }

  return html`<div class=${'layout' + (open ? ' with-track' : '')}>
    <header class="top">
      <h1>Taperoom</h1>
      <input ref=${searchBox} type="search" class="search" aria-label="Search tracks" placeholder="Search title, artist, album, genre… ( / )"
        value=${search} onInput=${(e) => setSearch(e.target.value)} />
      <span class="count" data-field="total">${total ?? ''} tracks</span>
      ${selection.size > 1 ? html`<span class="muted">${selection.size} selected</span>` : ''}
      <nav class="views" aria-label="Views">
        ${[['tracks', 'Tracks'], ['duplicates', 'Duplicates'], ['analysis', 'Analysis']].map(([v, label]) =>
          html`<button aria-pressed=${view === v} onClick=${() => setView(v)}>${label}</button>`)}
      </nav>
      <span class=${'live' + (connected ? ' on' : '')} title=${connected ? 'Live updates on' : 'Live updates off'}>●</span>
      ${document.getElementById('app').dataset.user ? html`<span class="user" data-field="user">${document.getElementById('app').dataset.user}</span>
        <form method="post" action="/logout" class="inline"><input type="hidden" name="csrf_token"
        value=${document.querySelector('meta[name="csrf-token"]').content} /><button type="submit">Sign out</button></form>` : ''}
    </header>
    <aside class="side">
      <${Folders} notify=${notify} progress=${progress} version=${folderVersion} onChanged=${() => setVersion((v) => v + 1)} />
      <${PlaylistTree} current=${view === 'playlist' ? playlist : null} onPick=${pickPlaylist} notify=${notify}
        version=${version} onSmart=${() => setView('smart')} />
    </aside>
    <main class="main">${main}</main>
    ${open ? html`<${TrackView} trackId=${open} playlist=${playlist} notify=${notify} onClose=${() => setOpen(null)}
      onOpen=${openTrack} onChanged=${() => setVersion((v) => v + 1)} />` : ''}
    <${Toasts} items=${toasts} />
  </div>`;
}

const root = document.getElementById('app');
root.querySelector('.boot')?.remove();
render(html`<${App} />`, root);
