// The scans of the library's folders as the page shows them (folder id -> phase, counters,
// percent; phase "done" once a scan has ended): kept up by the library:directory:scan:*
// events of /ws, and read again from GET /api/scan/library/:id/status where those events
// may have been missed (the page has just opened, or its live connection has come back).
import {api} from './api.js';
import {latest} from './latest.js';

export const isScanEvent = (name) => name.startsWith('library:directory:scan:');

// The shown scan of a folder after its event `name` (started, progress, complete) with `data`.
export function fromEvent(shown, name, data) {
  const phase = name.endsWith(':complete') ? 'done' : (data.phase || 'walk');
  return {...(shown || {}), ...data, ...(data.result || {}), phase};
}

// Every library folder with its scan status: [{dir, status}] (see contracts/library.md,
// GET /api/library/directories and GET /api/scan/library/:id/status).
export async function readScans() {
  const dirs = (await api('/api/library/directories')).data;
  return Promise.all(dirs.map(async (dir) =>
    ({dir, status: (await api(`/api/scan/library/${dir.id}/status`)).data})));
}

// The shown scan of a folder once its `status` has been read: a queued or running scan as
// it now stands; a scan shown as running that has ended since, or one that `endedUnseen`
// (it ran while the page heard nothing), as ended with the result the server kept (none
// shown when the server has none); otherwise the shown one as it is. undefined: none.
export function fromStatus(shown, status, endedUnseen) {
  if (status.scanning) return {...(shown || {}), ...status, phase: status.phase || status.state || 'walk'};
  if ((shown && shown.phase !== 'done') || endedUnseen) {
    return status.lastResult ? {...(shown || {}), ...status.lastResult, phase: 'done'} : undefined;
  }
  return shown;
}

// Follows the scans for the page: `heard(name, data)` for each scan event, `read()` when
// events may have been missed. `show(change)` is given each change as a function from the
// shown scans to the new ones (a state setter). A status read is out of date for a folder
// once an event for it has come after the read was asked (the event told newer), and as a
// whole once another read has been asked.
export function followScans(show) {
  const events = {};          // folder id -> scan events heard for it
  let lastScans = null;       // folder id -> its last_scan at the last read (null: none yet)
  const only = latest();
  const heard = (name, data) => {
    events[data.directoryId] = (events[data.directoryId] || 0) + 1;
    show((p) => ({...p, [data.directoryId]: fromEvent(p[data.directoryId], name, data)}));
  };
  const read = () => {
    const before = {...events};
    return only(readScans(), (found) => {
      const since = lastScans;
      lastScans = Object.fromEntries(found.map(({dir}) => [dir.id, dir.last_scan]));
      const fresh = found.filter(({dir}) => (events[dir.id] || 0) === (before[dir.id] || 0));
      show((p) => {
        const next = {...p};
        for (const {dir, status} of fresh) {
          const endedUnseen = since !== null && !!status.lastResult && since[dir.id] !== dir.last_scan;
          const shown = fromStatus(p[dir.id], status, endedUnseen);
          if (shown === undefined) delete next[dir.id];
          else next[dir.id] = shown;
        }
        return next;
      });
    });
  };
  return {heard, read};
}
