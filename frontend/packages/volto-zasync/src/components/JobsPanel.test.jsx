import { fireEvent, screen } from '@testing-library/react';
import JobsPanel, { selection } from './JobsPanel';
import { httpError, renderPage, storeFor } from '../test-utils';

const queues = {
  death_interval: 60,
  queues: [
    {
      name: '',
      counts: { pending: 0, delayed: 2, active: 0, failed: 1, completed: 5 },
      recurring: [],
      rate_limits: {},
    },
    {
      name: 'mail',
      counts: { pending: 0, delayed: 0, active: 0, failed: 0, completed: 0 },
      recurring: [],
      rate_limits: { smtp: { count: 60, per: 60 } },
    },
  ],
  workers: [
    { uuid: 'w-1', host: 'vm', pid: 12, threads: 2, active: 0, last_ping: '2026-12-05T10:00:00+00:00', alive: true },
    { uuid: 'w-2', host: 'vm', pid: 13, threads: 2, active: 0, last_ping: '2026-12-05T09:00:00+00:00', alive: false },
  ],
};

const failedJob = {
  id: 'f1',
  state: 'failed',
  description: 'collective.zasync.examples.flaky on /Plone',
  user: 'member',
  queued: '2026-12-05T10:00:00+00:00',
  progress: null,
  failure: 'ValueError: The first attempt fails on purpose.',
};

function backend(jobs) {
  return (op, path) => {
    if (path === '/@zasync-queues') return queues;
    if (op === 'del') return { removed: jobs.length };
    return { items: jobs, items_total: jobs.length, b_start: 0, b_size: 20, batching: {} };
  };
}

describe('Background jobs panel', () => {
  it('shows the queues with their counts and limits, and the workers', async () => {
    const store = storeFor(backend([failedJob]));
    const { container } = renderPage(JobsPanel, { path: '/controlpanel/zasync', store });
    await screen.findByText('w-1');
    expect(container.querySelector('[data-queue=""] .count-completed')).toHaveTextContent('5');
    expect(container.querySelector('[data-queue=""] .count-completed')).toHaveAttribute(
      'href',
      '/controlpanel/zasync?queue=&state=completed',
    );
    expect(screen.getByText('smtp: 60 per 60 s')).toBeInTheDocument();
    expect(container.querySelector('[data-worker="w-1"]')).toHaveTextContent('alive');
    expect(container.querySelector('[data-worker="w-2"]')).toHaveTextContent('not responding');
  });

  it('lists the jobs of the queue and state of its URL, linked to their pages', async () => {
    const store = storeFor(backend([failedJob]));
    renderPage(JobsPanel, { path: '/controlpanel/zasync?queue=mail&state=failed&b_start=20', store });
    const link = await screen.findByText('collective.zasync.examples.flaky on /Plone');
    expect(link.closest('a')).toHaveAttribute('href', '/controlpanel/zasync/jobs/f1');
    expect(store.requests.map((request) => request.path)).toContain(
      '/@zasync-jobs?queue=mail&state=failed&b_start=20&b_size=20',
    );
  });

  it('removes all failed jobs of the queue with a DELETE', async () => {
    const store = storeFor(backend([failedJob]));
    renderPage(JobsPanel, { path: '/controlpanel/zasync?queue=&state=failed', store });
    fireEvent.click(await screen.findByText('Remove all failed jobs'));
    await screen.findByText('1 jobs removed.');
    expect(store.requests).toContainEqual({ op: 'del', path: '/@zasync-jobs?queue=&state=failed', data: {} });
  });

  it('is refused to a user without "Manage portal"', async () => {
    const store = storeFor(
      () => {
        throw httpError(403, 'You are not allowed');
      },
      { userSession: { token: 'member-token' } },
    );
    renderPage(JobsPanel, { path: '/controlpanel/zasync', store });
    await screen.findByText(/Forbidden/);
    expect(screen.queryByText('Workers')).toBeNull();
  });

  it('reads its list from the URL, failed jobs of the default queue by default', () => {
    expect(selection('')).toEqual({ queue: '', state: 'failed', start: 0 });
    expect(selection('?queue=mail&state=active&b_start=40')).toEqual({ queue: 'mail', state: 'active', start: 40 });
    expect(selection('?state=bogus&b_start=-3')).toEqual({ queue: '', state: 'failed', start: 0 });
  });
});

describe('Background jobs panel, refused', () => {
  it('tells a logged-in user it is forbidden, even when Zope answers 401', async () => {
    const store = storeFor(
      () => {
        throw httpError(401, 'You are not authorized');
      },
      { userSession: { token: 'member-token' } },
    );
    renderPage(JobsPanel, { path: '/controlpanel/zasync', store });
    await screen.findByText(/Forbidden/);
  });
});
