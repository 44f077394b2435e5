// The track table: server pages fetched as they scroll into view, only the visible rows
// in the DOM (virtual scrolling), sortable columns, multi-select, keyboard, drag out.
import {html} from './html.js';
import {useEffect, useRef, useState, useCallback} from 'preact/hooks';
import {api, formatTime} from './api.js';
import {camelot, camelotColour, keyName} from './keys.js';

export const ROW = 30;          // px per row
const PAGE = 200;               // tracks per server page
const OVERSCAN = 10;

export const COLUMNS = [
  {id: 'title', label: 'Title', sort: 'title', cls: 'c-title'},
  {id: 'artist', label: 'Artist', sort: 'artist', cls: 'c-artist'},
  {id: 'bpm', label: 'BPM', sort: 'bpm', cls: 'c-num'},
  {id: 'key', label: 'Key', sort: 'musical_key', cls: 'c-key'},
  {id: 'energy', label: 'Energy', sort: 'energy_level', cls: 'c-num'},
  {id: 'genre', label: 'Genre', sort: 'genre', cls: 'c-genre'},
  {id: 'duration', label: 'Time', sort: 'duration_seconds', cls: 'c-num'},
  {id: 'rating', label: 'Rating', sort: 'rating', cls: 'c-rating'},
];

function cell(col, t) {
  switch (col.id) {
    case 'title': return t.title || t.relative_path || t.file_path;
    case 'artist': return t.artist || '';
    case 'bpm': return t.bpm ? t.bpm.toFixed(1) : '';
    case 'key': {
      const code = camelot(t.musical_key, t.mode);
      return code ? html`<span class="key" style=${`background:${camelotColour(t.musical_key, t.mode)}`}
        title=${keyName(t.musical_key, t.mode)}>${code}</span>` : '';
    }
    case 'energy': return t.energy_level ?? (t.energy !== null && t.energy !== undefined ? Number(t.energy).toFixed(2) : '');
    case 'genre': return t.genre || '';
    case 'duration': return formatTime(t.duration_seconds);
    case 'rating': return t.rating ? '★'.repeat(t.rating) : '';
    default: return '';
  }
}

// query: the list's filters (without page/limit); selection: Set of ids.
export function TrackTable({query, selection, onSelect, onOpen, onTotal, version}) {
  const box = useRef(null);
  const pages = useRef(new Map());       // page number -> rows
  const pending = useRef(new Set());     // pages asked for under the current key
  const stale = useRef(new Set());       // pages shown while they are fetched again
  const anchor = useRef(null);
  const [total, setTotal] = useState(null);
  const [range, setRange] = useState([0, 40]);
  const [, redraw] = useState(0);
  const [cursor, setCursor] = useState(0);
  const queryKey = JSON.stringify(query);
  const key = queryKey + '#' + version;
  const keyRef = useRef(key);
  const queryRef = useRef(queryKey);

  const load = useCallback(async (page) => {
    if ((pages.current.has(page) && !stale.current.has(page)) || pending.current.has(page)) return;
    const asking = pending.current;
    asking.add(page);
    const asked = keyRef.current;
    const path = query.search ? '/api/tracks/search' : '/api/tracks';
    const params = {...query, page, limit: PAGE};
    if (query.search) { params.q = query.search; delete params.search; }
    try {
      const body = await api(path, {query: params});
      if (asked !== keyRef.current) return;
      pages.current.set(page, body.data);
      stale.current.delete(page);
      setTotal(body.pagination.total);
      onTotal && onTotal(body.pagination.total);
      redraw((n) => n + 1);
      window.dispatchEvent(new CustomEvent('tracks-painted', {detail: {page, query: asked}}));
    } finally {
      asking.delete(page);
    }
  }, [key]);

  useEffect(() => {
    keyRef.current = key;
    pending.current = new Set();
    if (queryRef.current !== queryKey || pages.current.size === 0) {  // a new query: start again from the top
      queryRef.current = queryKey;
      pages.current = new Map();
      stale.current = new Set();
      setTotal(null);
      if (box.current) box.current.scrollTop = 0;
      setRange([0, 40]);
      setCursor(0);
      load(1);
      return;
    }
    // the same query, the tracks changed (version): the rows shown stay, the same elements,
    // until their pages come back, so that a drag begun on one, the scroll and the cursor survive
    stale.current = new Set(pages.current.keys());
    const first = Math.floor(range[0] / PAGE) + 1;
    const last = Math.floor(Math.max(range[0], range[1] - 1) / PAGE) + 1;
    for (let p = first; p <= last; p++) load(p);
  }, [key]);

  useEffect(() => {
    const first = Math.floor(range[0] / PAGE) + 1;
    const last = Math.floor(Math.max(range[0], range[1] - 1) / PAGE) + 1;
    for (let p = first; p <= last; p++) load(p);
  }, [range, key]);

  const onScroll = () => {
    const el = box.current;
    const start = Math.max(0, Math.floor(el.scrollTop / ROW) - OVERSCAN);
    const end = Math.ceil((el.scrollTop + el.clientHeight) / ROW) + OVERSCAN;
    if (start !== range[0] || end !== range[1]) setRange([start, end]);
  };
  useEffect(() => { onScroll(); }, [total]);

  const rowAt = (i) => (pages.current.get(Math.floor(i / PAGE) + 1) || [])[i % PAGE];

  const select = (i, ev) => {
    const t = rowAt(i);
    if (!t) return;
    setCursor(i);
    let next;
    if (ev && ev.shiftKey && anchor.current !== null) {
      next = new Set(ev.ctrlKey || ev.metaKey ? selection : []);
      const [a, b] = [Math.min(anchor.current, i), Math.max(anchor.current, i)];
      for (let j = a; j <= b; j++) { const r = rowAt(j); if (r) next.add(r.id); }
    } else if (ev && (ev.ctrlKey || ev.metaKey)) {
      next = new Set(selection);
      next.has(t.id) ? next.delete(t.id) : next.add(t.id);
      anchor.current = i;
    } else {
      next = new Set([t.id]);
      anchor.current = i;
    }
    onSelect(next, t);
  };

  const onKey = (ev) => {
    if (!total) return;
    let i = cursor;
    if (ev.key === 'ArrowDown') i = Math.min(total - 1, cursor + 1);
    else if (ev.key === 'ArrowUp') i = Math.max(0, cursor - 1);
    else if (ev.key === 'PageDown') i = Math.min(total - 1, cursor + 20);
    else if (ev.key === 'PageUp') i = Math.max(0, cursor - 20);
    else if (ev.key === 'Home') i = 0;
    else if (ev.key === 'End') i = total - 1;
    else if (ev.key === 'Enter') { const t = rowAt(cursor); if (t) onOpen(t); ev.preventDefault(); return; }
    else if (ev.key === 'a' && (ev.ctrlKey || ev.metaKey)) {
      const all = new Set();
      for (const rows of pages.current.values()) rows.forEach((r) => all.add(r.id));
      onSelect(all, null); ev.preventDefault(); return;
    } else return;
    ev.preventDefault();
    select(i, {shiftKey: ev.shiftKey});
    const el = box.current;
    if (i * ROW < el.scrollTop) el.scrollTop = i * ROW;
    else if ((i + 1) * ROW > el.scrollTop + el.clientHeight) el.scrollTop = (i + 1) * ROW - el.clientHeight;
  };

  const onDragStart = (ev, t) => {
    const ids = selection.has(t.id) ? [...selection] : [t.id];
    // selected after the drag has started: a render inside dragstart may cancel the drag
    if (!selection.has(t.id)) setTimeout(() => onSelect(new Set([t.id]), t), 0);
    ev.dataTransfer.setData('application/x-taperoom-tracks', JSON.stringify(ids));
    ev.dataTransfer.setData('text/plain', ids.join('\n'));
    ev.dataTransfer.effectAllowed = 'copy';
  };

  const rows = [];
  const end = Math.min(total || 0, range[1]);
  for (let i = range[0]; i < end; i++) {
    const t = rowAt(i);
    const top = i * ROW;
    if (!t) {
      rows.push(html`<div class="row loading" role="row" style=${`top:${top}px`} key=${'l' + i}>
        <span class="c-title">…</span></div>`);
      continue;
    }
    const selected = selection.has(t.id);
    rows.push(html`<div key=${t.id} role="row" aria-rowindex=${i + 2} aria-selected=${selected}
      class=${'row' + (selected ? ' selected' : '') + (i === cursor ? ' cursor' : '') + (t.is_missing ? ' missing' : '')}
      style=${`top:${top}px`} data-track-id=${t.id} draggable="true"
      onDragStart=${(e) => onDragStart(e, t)}
      onClick=${(e) => select(i, e)} onDblClick=${() => onOpen(t)}>
      ${COLUMNS.map((c) => html`<span role="gridcell" class=${c.cls}>${cell(c, t)}</span>`)}
    </div>`);
  }

  const sortBy = (col) => {
    if (!col.sort) return;
    const order = query.sort === col.sort && query.order !== 'asc' ? 'asc' : 'desc';
    window.dispatchEvent(new CustomEvent('track-sort', {detail: {sort: col.sort, order}}));
  };

  return html`<div class="tracktable" role="grid" aria-label="Tracks" aria-rowcount=${(total || 0) + 1}>
    <div class="row head" role="row">
      ${COLUMNS.map((c) => html`<button role="columnheader" class=${c.cls + ' sortable'}
        aria-sort=${query.sort === c.sort ? (query.order === 'asc' ? 'ascending' : 'descending') : 'none'}
        onClick=${() => sortBy(c)}>${c.label}${query.sort === c.sort ? (query.order === 'asc' ? ' ▲' : ' ▼') : ''}</button>`)}
    </div>
    <div class="rows" ref=${box} onScroll=${onScroll} tabindex="0" onKeyDown=${onKey}
      data-total=${total ?? ''}>
      <div class="spacer" style=${`height:${(total || 0) * ROW}px`}>${rows}</div>
      ${total === 0 ? html`<p class="empty">No tracks match.</p>` : ''}
    </div>
  </div>`;
}
