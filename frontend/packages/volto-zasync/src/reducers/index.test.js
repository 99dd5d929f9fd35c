import zasync from './index';
import { changeZasync, getZasync, ZASYNC_REQUEST } from '../actions';

describe('zasync reducer', () => {
  it('keeps each answer under its key', () => {
    let state = zasync(undefined, { type: `${ZASYNC_REQUEST}_SUCCESS`, key: 'a', result: 1 });
    state = zasync(state, { type: `${ZASYNC_REQUEST}_SUCCESS`, key: 'b', result: 2 });
    expect(state.a.data).toBe(1);
    expect(state.b.data).toBe(2);
  });

  it('keeps the last answer while asking again, and after a failure', () => {
    let state = zasync(undefined, { type: `${ZASYNC_REQUEST}_SUCCESS`, key: 'a', result: 1 });
    state = zasync(state, { type: `${ZASYNC_REQUEST}_PENDING`, key: 'a' });
    expect(state.a).toMatchObject({ loading: true, data: 1 });
    state = zasync(state, { type: `${ZASYNC_REQUEST}_FAIL`, key: 'a', error: { status: 500 } });
    expect(state.a).toMatchObject({ loading: false, data: 1, error: { status: 500 } });
  });
});

describe('actions', () => {
  it('read with GET and change with a JSON body', () => {
    expect(getZasync('k', '/@zasync-queues').request).toEqual({ op: 'get', path: '/@zasync-queues' });
    expect(changeZasync('k', 'post', '/@zasync-jobs/1/retry').request).toEqual({
      op: 'post',
      path: '/@zasync-jobs/1/retry',
      data: {},
    });
  });
});
