import { act, fireEvent, screen, waitFor } from '@testing-library/react';
import MyJobs from './MyJobs';
import { POLL_INTERVAL } from '../helpers';
import { httpError, renderPage, storeFor } from '../test-utils';

const running = {
  id: 'j1',
  state: 'active',
  description: 'collective.zasync.examples.count_content on /Plone',
  progress: 40,
  result: null,
  error: null,
  cancellable: false,
  queued: '2026-12-05T10:00:00+00:00',
};
const delayed = {
  id: 'j2',
  state: 'delayed',
  description: 'collective.zasync.examples.count_content on /Plone',
  progress: null,
  result: null,
  error: null,
  cancellable: true,
  cancel: 'http://localhost:8080/Plone/@zasync-my-jobs/j2/cancel',
  queued: '2026-12-05T09:00:00+00:00',
};
const failed = {
  ...delayed,
  id: 'j3',
  state: 'failed',
  cancellable: false,
  cancel: undefined,
  error: 'ValueError: the disk is full',
};

function page(items) {
  return { b_start: 0, b_size: 20, items, batching: {} };
}

describe('My jobs', () => {
  afterEach(() => vi.useRealTimers());

  it('lists the jobs with their state, progress and one-line error', async () => {
    const store = storeFor(() => page([running, delayed, failed]));
    const { container } = renderPage(MyJobs, { path: '/my-jobs', store });
    await screen.findByText('ValueError: the disk is full');
    expect(store.requests[0]).toEqual({ op: 'get', path: '/@zasync-my-jobs?b_start=0&b_size=20' });
    expect(screen.getByText('running')).toBeInTheDocument();
    expect(screen.getByText('delayed')).toBeInTheDocument();
    const bar = container.querySelector('[data-job="j1"] .zasync-progress');
    expect(bar).toHaveAttribute('data-percent', '40');
    // Only the job the user may cancel has the button.
    expect(container.querySelectorAll('button')).toHaveLength(1);
    expect(container.querySelector('[data-job="j2"] button')).toHaveTextContent('Cancel');
  });

  it('asks again while a job runs, and stops when all have finished', async () => {
    vi.useFakeTimers();
    const answers = [page([running]), page([{ ...running, progress: 80 }]), page([{ ...running, state: 'completed', progress: null, result: "{'Document': 3}" }])];
    const store = storeFor(() => answers[Math.min(store.requests.length - 1, 2)]);
    const { container } = renderPage(MyJobs, { path: '/my-jobs', store });
    await act(async () => {});
    expect(container.querySelector('.zasync-progress')).toHaveAttribute('data-percent', '40');
    await act(async () => vi.advanceTimersByTime(POLL_INTERVAL));
    expect(container.querySelector('.zasync-progress')).toHaveAttribute('data-percent', '80');
    await act(async () => vi.advanceTimersByTime(POLL_INTERVAL));
    expect(screen.getByText("{'Document': 3}")).toBeInTheDocument();
    expect(store.requests).toHaveLength(3);
    await act(async () => vi.advanceTimersByTime(5 * POLL_INTERVAL));
    expect(store.requests).toHaveLength(3);
  });

  it('cancels a pending job with a JSON POST, then shows it again', async () => {
    let cancelled = false;
    const store = storeFor((op, path) => {
      if (op === 'post') {
        cancelled = true;
        return { ...delayed, state: 'failed' };
      }
      return page([cancelled ? { ...delayed, state: 'failed', cancellable: false, error: 'Cancelled' } : delayed]);
    });
    renderPage(MyJobs, { path: '/my-jobs', store });
    fireEvent.click(await screen.findByText('Cancel'));
    await screen.findByText('Cancelled');
    expect(store.requests[1]).toEqual({ op: 'post', path: '/@zasync-my-jobs/j2/cancel', data: {} });
    expect(screen.queryByText('Cancel')).toBeNull();
  });

  it('says why a cancel was refused', async () => {
    const store = storeFor((op) => {
      if (op === 'post') throw httpError(400, 'Job j2 is completed.');
      return page([delayed]);
    });
    renderPage(MyJobs, { path: '/my-jobs', store });
    fireEvent.click(await screen.findByText('Cancel'));
    await screen.findByText('That did not work: Job j2 is completed.');
  });

  it('tells Anonymous to log in', async () => {
    const store = storeFor(() => {
      throw httpError(401, 'You are not authorized');
    });
    renderPage(MyJobs, { path: '/my-jobs', store });
    await waitFor(() => expect(document.body.textContent).toMatch(/Unauthorized/));
  });
});
