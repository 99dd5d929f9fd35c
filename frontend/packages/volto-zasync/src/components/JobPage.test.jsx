import { fireEvent, screen } from '@testing-library/react';
import JobPage from './JobPage';
import { renderPage, storeFor } from '../test-utils';

const job = {
  id: 'f1',
  state: 'failed',
  queue: '',
  description: 'collective.zasync.examples.flaky on /Plone',
  callable: 'collective.zasync.examples.flaky',
  context_path: '/Plone',
  user: 'member',
  queued: '2026-12-05T10:00:00+00:00',
  started: '2026-12-05T10:00:01+00:00',
  ended: '2026-12-05T10:00:02+00:00',
  attempts: 1,
  priority: 0,
  args: [],
  kwargs: {},
  result: null,
  progress: null,
  failure: 'ValueError: The first attempt fails on purpose.',
  traceback: 'Traceback (most recent call last):\n  ...\nValueError: The first attempt fails on purpose.\n',
  actions: ['retry', 'remove'],
};

describe('A job in the panel', () => {
  it('shows the function, user, attempts and traceback, and retries with a JSON POST', async () => {
    let retried = false;
    const store = storeFor((op) => {
      if (op === 'post') {
        retried = true;
        return { ...job, state: 'pending', actions: ['cancel'] };
      }
      return retried
        ? { ...job, state: 'completed', attempts: 2, failure: null, traceback: null, result: "'succeeded on attempt 2'", actions: ['remove'] }
        : job;
    });
    const { container } = renderPage(JobPage, {
      path: '/controlpanel/zasync/jobs/f1',
      route: '/controlpanel/zasync/jobs/:jobId',
      store,
    });
    await screen.findByText('collective.zasync.examples.flaky');
    expect(screen.getByText('member')).toBeInTheDocument();
    expect(container.querySelector('.zasync-traceback pre')).toHaveTextContent('Traceback (most recent call last)');
    expect(store.requests[0].path).toBe('/@zasync-jobs/f1');
    fireEvent.click(screen.getByText('Retry'));
    await screen.findByText("'succeeded on attempt 2'");
    expect(store.requests[1]).toEqual({ op: 'post', path: '/@zasync-jobs/f1/retry', data: {} });
    expect(screen.queryByText('Retry')).toBeNull();
    expect(container.querySelector('.zasync-traceback')).toBeNull();
  });
});
