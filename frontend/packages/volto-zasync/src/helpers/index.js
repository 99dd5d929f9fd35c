/** Small helpers shared by the pages. */

/** The states of a job that can still change: the pages poll while one is shown. */
export const UNFINISHED = ['pending', 'delayed', 'active'];

/** The states the control panel lists jobs by (the backend's `counts`). */
export const STATES = ['pending', 'delayed', 'active', 'failed', 'completed'];

/** How often (ms) a page asks again while a job it shows is not finished. */
export const POLL_INTERVAL = 2000;

/** Jobs per page in the lists. */
export const PAGE_SIZE = 20;

export function isUnfinished(job) {
  return UNFINISHED.includes(job?.state);
}

/** The Semantic UI colour of a state's label. */
export function stateColor(state) {
  return (
    {
      pending: 'grey',
      delayed: 'blue',
      active: 'teal',
      failed: 'red',
      completed: 'green',
    }[state] || 'grey'
  );
}

/** An error answer of the backend as one line: its message, else the HTTP status. */
export function errorMessage(error) {
  return (
    error?.response?.body?.error?.message ||
    error?.response?.body?.message ||
    (error?.status ? `HTTP ${error.status}` : null)
  );
}

/** The HTTP status of a failed request (401: log in; 403: not allowed). */
export function errorStatus(error) {
  return error?.status || error?.response?.status || error?.response?.statusCode;
}
