// Window events that come in bursts (a scan sends thousands of track and duplicate
// events): one action for a burst, some milliseconds after its first event.
import {useEffect, useRef} from 'preact/hooks';

// Calls `run()` once, `waitMs` after the first event `name` on window that `wanted(event)`
// accepts, for all such events until then. `run` and `wanted` are read at each event, so
// they may close over the component's latest state; the listener lives as long as the
// component (or until `name` or `waitMs` change).
export function useBurst(name, waitMs, run, wanted = () => true) {
  const latest = useRef(null);
  latest.current = {run, wanted};
  useEffect(() => {
    let timer = null;
    const on = (event) => {
      if (timer !== null || !latest.current.wanted(event)) return;
      timer = setTimeout(() => { timer = null; latest.current.run(); }, waitMs);
    };
    window.addEventListener(name, on);
    return () => { window.removeEventListener(name, on); clearTimeout(timer); };
  }, [name, waitMs]);
}
