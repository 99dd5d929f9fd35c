/** The answers of the REST services, by the key the page asked them under. */
import { ZASYNC_REQUEST } from '../actions';

const initialRequest = { loading: false, loaded: false, error: null, data: null };

export default function zasync(state = {}, action = {}) {
  const previous = state[action.key] || initialRequest;
  switch (action.type) {
    case `${ZASYNC_REQUEST}_PENDING`:
      // Keep the last answer while polling, so the page does not flicker.
      return { ...state, [action.key]: { ...previous, loading: true, error: null } };
    case `${ZASYNC_REQUEST}_SUCCESS`:
      return {
        ...state,
        [action.key]: { loading: false, loaded: true, error: null, data: action.result },
      };
    case `${ZASYNC_REQUEST}_FAIL`:
      return {
        ...state,
        [action.key]: { ...previous, loading: false, loaded: true, error: action.error },
      };
    default:
      return state;
  }
}
