// Library folders (folder picker, scans with live progress, missing tracks, removable
// drives), duplicate groups, the analysis queue.
import {html} from './html.js';
import {useEffect, useState} from 'preact/hooks';
import {api} from './api.js';
import {useBurst} from './bursts.js';
import {useLatest} from './latest.js';

function Picker({onChoose, onClose}) {
  const [at, setAt] = useState(null);
  const [error, setError] = useState('');
  const only = useLatest();  // folders clicked in quick succession: the last one is shown
  const go = (path) => only(api('/api/library/directories/server-folders', {query: {path}}),
    (b) => { setAt(b.data); setError(''); }).catch((e) => setError(e.message));
  useEffect(() => { go(''); }, []);
  if (!at) return html`<div class="picker">${error || '…'}</div>`;
  return html`<div class="picker" role="dialog" aria-label="Choose a folder">
    <p class="path"><code>${at.path}</code></p>
    ${error ? html`<p class="error">${error}</p>` : ''}
    <form class="inline" onSubmit=${(e) => { e.preventDefault(); go(e.target.elements.p.value); }}>
      <input name="p" aria-label="Folder path" placeholder="/path/to/music" />
      <button type="submit">Go</button></form>
    <ul>
      ${at.parent ? html`<li><button class="link" onClick=${() => go(at.parent)}>⬑ ..</button></li>` : ''}
      ${at.folders.map((f) => html`<li><button class="link" onClick=${() => go(f.path)} title=${f.refused || ''}>📁 ${f.name}</button></li>`)}
    </ul>
    <button onClick=${() => onChoose(at.path)} disabled=${!!at.refused} title=${at.refused || ''}>Add this folder</button>
    <button onClick=${onClose}>Cancel</button>
  </div>`;
}

export function Folders({notify, progress, version, onChanged}) {
  const [dirs, setDirs] = useState([]);
  const [picking, setPicking] = useState(false);
  const [missing, setMissing] = useState(null);
  const onlyDirs = useLatest();  // reloads after events and changes: the last one asked is shown
  const onlyMissing = useLatest();
  const load = () => onlyDirs(api('/api/library/directories'), (b) => setDirs(b.data))
    .catch((e) => notify(e.message, true));
  useEffect(() => { load(); }, [version]);
  const add = async (path) => {
    try {
      const d = (await api('/api/library/directories', {method: 'POST', body: {path}})).data;
      setPicking(false); notify(`Added ${d.name}`); await load();
      await api(`/api/scan/library/${d.id}`, {method: 'POST', body: {strategy: 'hybrid'}});
    } catch (err) { notify(err.message, true); }
  };
  const scan = async (d) => {
    try { await api(`/api/scan/library/${d.id}`, {method: 'POST', body: {strategy: 'hybrid'}}); }
    catch (err) { notify(err.message, true); }
  };
  const cancel = async (d) => {
    try { await api(`/api/scan/library/${d.id}`, {method: 'DELETE'}); notify('Scan cancelled'); }
    catch (err) { notify(err.message, true); }
  };
  const remove = async (d) => {
    if (!confirm(`Remove ${d.name} from the library? (its files stay on disk)`)) return;
    try { await api(`/api/library/directories/${d.id}`, {method: 'DELETE', query: {delete_tracks: 'true'}}); load(); onChanged(); }
    catch (err) { notify(err.message, true); }
  };
  const showMissing = async (d) => {
    try {
      await onlyMissing(api(`/api/library/directories/${d.id}/missing`, {query: {limit: 100}}),
        (b) => setMissing({dir: d, tracks: b.data}));
    }
    catch (err) { notify(err.message, true); }
  };
  return html`<section class="folders" aria-label="Library folders">
    <h2>Folders</h2>
    <ul>
      ${dirs.map((d) => {
        const p = progress[d.id];
        const scanning = p && p.phase !== 'done';
        return html`<li class="folder" data-directory-id=${d.id}>
          <div><strong>${d.name}</strong> ${d.is_removable ? html`<span class="badge">removable</span>` : ''}
            ${d.is_available ? '' : html`<span class="badge warn">disconnected</span>`}</div>
          <small class="muted" title=${d.path}>${d.total_tracks} tracks${d.total_missing ? html`, <button class="link" onClick=${() => showMissing(d)}>${d.total_missing} missing</button>` : ''}</small>
          ${scanning ? html`<div class="progress" role="progressbar" aria-label=${`Scan of ${d.name}`} aria-valuenow=${p.percent || 0}
            aria-valuemin="0" aria-valuemax="100"><span style=${`width:${p.percent || 0}%`}></span>
            <small>${p.phase} ${p.filesProcessed ?? 0}/${p.filesFound ?? 0}</small></div>` : ''}
          ${p && p.phase === 'done' ? html`<small class="scan-done">Scan done: +${p.tracksAdded ?? 0}</small>` : ''}
          <div class="tools">
            ${scanning ? html`<button onClick=${() => cancel(d)}>Cancel scan</button>` : html`<button onClick=${() => scan(d)}>Scan</button>`}
            <button onClick=${() => remove(d)} aria-label=${`Remove ${d.name}`}>Remove</button>
          </div>
        </li>`;
      })}
    </ul>
    ${picking ? html`<${Picker} onChoose=${add} onClose=${() => setPicking(false)} />`
      : html`<button onClick=${() => setPicking(true)}>Add folder…</button>`}
    ${missing ? html`<div class="missing"><h3>Missing in ${missing.dir.name}</h3>
      <ul>${missing.tracks.map((t) => html`<li>${t.relative_path}</li>`)}</ul>
      <button onClick=${() => setMissing(null)}>Close</button></div>` : ''}
  </section>`;
}

const LOSSLESS = new Set(['flac', 'wav', 'aiff', 'aif', 'alac']);

// How long the Duplicates panel waits after a duplicate event before it reads the groups
// again (ms): a scan that finds many sends a burst.
const DUPLICATES_CHANGED_MS = 300;

export function Duplicates({notify}) {
  const [groups, setGroups] = useState(null);
  const [keep, setKeep] = useState({});
  // the list asked for on opening, after a search and after each resolve: an earlier list
  // that comes late would bring back a group resolved since
  const only = useLatest();
  const load = () => only(api('/api/duplicates', {query: {limit: 100}}), (b) => setGroups(b.data))
    .catch((e) => notify(e.message, true));
  useEffect(() => { load(); }, []);
  useBurst('duplicates-changed', DUPLICATES_CHANGED_MS, load);  // found or resolved elsewhere
  const rescan = async () => { try { await api('/api/duplicates/scan', {method: 'POST'}); load(); } catch (err) { notify(err.message, true); } };
  const resolve = async (g) => {
    const body = keep[g.id] ? {canonicalTrackId: keep[g.id]} : {};
    try { await api(`/api/duplicates/${g.id}/resolve`, {method: 'POST', body}); notify('Duplicates resolved'); load(); }
    catch (err) { notify(err.message, true); }
  };
  if (groups === null) return html`<section class="dups"><p>…</p></section>`;
  return html`<section class="dups" aria-label="Duplicates">
    <header><h2>Duplicates</h2><button onClick=${rescan}>Find duplicates</button></header>
    ${groups.length === 0 ? html`<p class="muted">No duplicates.</p>` : ''}
    ${groups.map((g) => html`<article class="dupgroup" data-group-id=${g.id}>
      <div class="side">
        ${g.tracks.map((t) => {
          const ext = (t.file_path.split('.').pop() || '').toLowerCase();
          const chosen = (keep[g.id] || g.canonical_track_id) === t.id;
          return html`<label class=${'copy' + (chosen ? ' chosen' : '')}>
            <input type="radio" name=${'keep' + g.id} checked=${chosen} onChange=${() => setKeep({...keep, [g.id]: t.id})} />
            <strong>${ext.toUpperCase()}</strong>${LOSSLESS.has(ext) ? ' lossless' : ''} · ${t.bit_rate ? Math.round(t.bit_rate / 1000) + ' kb/s' : '?'}
            <div>${t.artist || '?'} – ${t.title || '?'}</div>
            <small class="muted">${t.file_path.split('/').slice(0, -1).join('/')}</small>
          </label>`;
        })}
      </div>
      <button onClick=${() => resolve(g)}>Keep the chosen copy</button>
    </article>`)}
  </section>`;
}

const fileName = (j) => (j.file_path || '').split('/').pop() || j.job_id;

function JobRows({jobs, retry}) {
  return jobs.map((j) => html`<tr key=${j.id} role="row" class="job" data-status=${j.status} data-job-id=${j.job_id}>
    <td role="cell" class="name" title=${j.file_path || ''}>${fileName(j)}</td>
    <td role="cell">${j.status}${j.retry_count ? html` <small class="muted">(${j.retry_count} ${j.retry_count === 1 ? 'retry' : 'retries'})</small>` : ''}</td>
    <td role="cell"><progress max="100" value=${j.progress_percent || 0} aria-label=${`Progress of ${fileName(j)}`}></progress>
      <small> ${j.progress_percent || 0}%</small></td>
    <td role="cell" class="error">${j.last_error || ''}</td>
    <td role="cell">${retry && j.track_id ? html`<button onClick=${() => retry(j)} aria-label=${`Retry ${fileName(j)}`}>Retry</button>` : ''}</td>
  </tr>`);
}

function JobTable({label, jobs, total, retry, empty}) {
  // explicit roles: the narrow layout shows these tables as blocks and grids
  return html`<table role="table" class="jobs" aria-label=${label}>
    <caption>${label} <small class="muted" data-field=${'total-' + label.toLowerCase()}>${total}</small></caption>
    <thead><tr><th scope="col">Track</th><th scope="col">Status</th><th scope="col">Progress</th>
      <th scope="col">Error</th><th scope="col"><span class="sr-only">Action</span></th></tr></thead>
    <tbody role="rowgroup">${jobs.length ? html`<${JobRows} jobs=${jobs} retry=${retry} />`
      : html`<tr role="row"><td role="cell" colspan="5" class="muted">${empty}</td></tr>`}</tbody>
  </table>`;
}

// The analysis queue: running and queued jobs with their progress, failures with their
// error and a retry, the latest jobs; reloaded on the analysis events of /ws.
export function Analysis({notify, version}) {
  const [queue, setQueue] = useState(null);
  const [lists, setLists] = useState(null);
  const only = useLatest();  // reloads on events, timers and clicks: the last one asked is shown
  const load = async () => {
    const page = (status, limit) => api('/api/analysis/jobs', {query: {status, limit}});
    try {
      await only(Promise.all([api('/api/analysis/queue'),
        page('processing', 50), page('queued', 50), page('failed', 100), page('', 20)]),
      ([q, running, queued, failed, recent]) => {
        setQueue(q);
        setLists({active: [...running.jobs, ...queued.jobs], activeTotal: running.total + queued.total,
          failed: failed.jobs, failedTotal: failed.total, recent: recent.jobs, recentTotal: recent.total});
      });
    } catch (err) { notify(err.message, true); }
  };
  useEffect(() => { load(); }, [version]);
  useEffect(() => {  // analysis events come in bursts: one reload for each burst
    let timer = null;
    const on = () => { clearTimeout(timer); timer = setTimeout(load, 300); };
    window.addEventListener('analysis-event', on);
    return () => { clearTimeout(timer); window.removeEventListener('analysis-event', on); };
  }, []);
  useEffect(() => {  // while jobs wait or run, look again now and then (live events may be off)
    if (!lists || !lists.activeTotal) return undefined;
    const timer = setTimeout(load, 3000);
    return () => clearTimeout(timer);
  }, [lists]);
  const retry = async (j) => {
    try {
      await api('/api/analysis/request', {method: 'POST', body: {track_id: j.track_id, force: true}});
      notify(`Analysis of ${fileName(j)} queued again`); load();
    } catch (err) { notify(err.message, true); }
  };
  return html`<section class="analysis" aria-label="Analysis">
    <header><h2>Analysis</h2><button onClick=${load}>Refresh</button></header>
    ${queue ? html`<p data-field="queue">${queue.stats.queued.total} queued, ${queue.queue.processingCount} running${queue.queue.paused ? ' (stopped)' : ''}</p>` : ''}
    ${lists === null ? html`<p>…</p>` : html`
      <${JobTable} label="Queue" jobs=${lists.active} total=${lists.activeTotal} empty="Nothing queued." />
      <${JobTable} label="Failed" jobs=${lists.failed} total=${lists.failedTotal} retry=${retry} empty="No failures." />
      <${JobTable} label="Latest" jobs=${lists.recent} total=${lists.recentTotal} empty="No analysis yet." />`}
  </section>`;
}
