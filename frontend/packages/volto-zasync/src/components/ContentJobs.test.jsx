import { screen } from '@testing-library/react';
import ContentJobs, { itemPath } from './ContentJobs';
import { renderPage, storeFor } from '../test-utils';

describe("An item's background jobs", () => {
  it('asks the item for its jobs and shows who queued them', async () => {
    const store = storeFor(() => ({
      b_start: 0,
      b_size: 20,
      batching: {},
      items: [
        {
          id: 'c1',
          state: 'completed',
          description: 'collective.zasync.examples.publish_later on /Plone/news',
          user: 'editor',
          result: null,
          error: null,
          progress: null,
          cancellable: false,
        },
      ],
    }));
    renderPage(ContentJobs, { path: '/news/background-jobs', route: '/**/background-jobs', store });
    await screen.findByText('editor');
    expect(store.requests[0].path).toBe('/news/@zasync-content-jobs?b_start=0&b_size=20');
  });

  it('finds the item from the page path', () => {
    expect(itemPath('/news/background-jobs')).toBe('/news');
    expect(itemPath('/background-jobs')).toBe('');
  });
});
