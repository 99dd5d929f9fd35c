/** Reading a REST service into the store, again and again while `poll` says so. */
import { useCallback, useEffect } from 'react';
import { useDispatch, useSelector } from 'react-redux';
import { getZasync } from '../actions';
import { POLL_INTERVAL } from '../helpers';

const EMPTY = { loading: false, loaded: false, error: null, data: null };

/** `[request, reload]`: `state.zasync[key]`, loaded from `path`; polled while `poll(data)`. */
export function useZasync(key, path, poll = () => false) {
  const dispatch = useDispatch();
  const request = useSelector((state) => state.zasync?.[key]) || EMPTY;
  // A failed read is in the store (request.error), where the page shows it.
  const reload = useCallback(
    () => Promise.resolve(dispatch(getZasync(key, path))).catch(() => null),
    [dispatch, key, path],
  );
  useEffect(() => {
    reload();
  }, [reload]);
  const polling = Boolean(request.data && poll(request.data));
  useEffect(() => {
    if (!polling) return undefined;
    const timer = setInterval(reload, POLL_INTERVAL);
    return () => clearInterval(timer);
  }, [polling, reload]);
  return [request, reload];
}
