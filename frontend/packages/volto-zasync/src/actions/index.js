/**
 * Requests to collective.zasync's REST services (docs/rest-api.md of the backend).
 *
 * Every answer is kept under a key of its own in the `zasync` reducer, so that
 * several pages (and a page and its polling) do not overwrite each other.
 */
export const ZASYNC_REQUEST = 'ZASYNC_REQUEST';

/** Read `path` (a REST path below the site or an item) into `state.zasync[key]`. */
export function getZasync(key, path) {
  return {
    type: ZASYNC_REQUEST,
    key,
    request: { op: 'get', path },
  };
}

/**
 * Change something: POST or DELETE `path`. The body is always JSON (an empty
 * object at least), which the backend asks of every state-changing request.
 */
export function changeZasync(key, method, path, data = {}) {
  return {
    type: ZASYNC_REQUEST,
    key,
    request: { op: method, path, data },
  };
}
