// Answers that come back out of order: of the requests made through one guard, only the
// answer of the one asked last is shown. A list that is asked for again (a reload after a
// change, a live event, a new search) must not be painted over by the answer of an
// earlier request that happens to arrive later.
import {useEffect, useRef} from 'preact/hooks';

// A guard: `only(promise, show)` calls `show(answer)` when `promise` resolves, unless
// another promise was given to the same guard since (the answer is then out of date, and
// dropped). The promise it returns settles once the answer has come, shown or not, so
// that code awaiting it goes on either way: with what `show` returned, undefined for a
// dropped answer, or rejected with the error of the latest request (the failure of an
// out-of-date one is of no interest). `only.drop()` makes every answer still on its way
// out of date (the component that asked for them is gone).
export function latest() {
  let asked = 0;
  const only = (promise, show) => {
    const n = ++asked;
    return promise.then((answer) => (n === asked ? show(answer) : undefined),
      (error) => { if (n === asked) throw error; });
  };
  only.drop = () => { asked += 1; };
  return only;
}

// The guard of a component: the same one on every render, dropped on unmount.
export function useLatest() {
  const guard = useRef(null);
  if (guard.current === null) guard.current = latest();
  useEffect(() => guard.current.drop, []);
  return guard.current;
}
