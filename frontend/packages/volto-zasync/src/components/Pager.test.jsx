import React from 'react';
import { fireEvent, render, screen } from '@testing-library/react';
import { IntlProvider } from 'react-intl';
import Pager from './Pager';

function renderPager(data, onPage) {
  return render(
    <IntlProvider locale="en">
      <Pager data={data} onPage={onPage} />
    </IntlProvider>,
  );
}

describe('Pager', () => {
  it('says which jobs are shown and asks for the next and previous pages', () => {
    const onPage = vi.fn();
    const items = Array.from({ length: 20 }, (_, index) => ({ id: `j${index}` }));
    renderPager(
      { b_start: 20, b_size: 20, items, items_total: 45, batching: { prev: 'p', next: 'n' } },
      onPage,
    );
    expect(screen.getByText('Jobs 21 to 40 of 45')).toBeInTheDocument();
    fireEvent.click(screen.getByText('Next'));
    fireEvent.click(screen.getByText('Previous'));
    expect(onPage.mock.calls).toEqual([[40], [0]]);
  });

  it('is not shown when everything fits on one page', () => {
    const { container } = renderPager({ b_start: 0, b_size: 20, items: [], batching: {} }, vi.fn());
    expect(container).toBeEmptyDOMElement();
  });

  it('cannot go back from the first page', () => {
    renderPager({ b_start: 0, b_size: 20, items: [{ id: 'a' }], batching: { next: 'n' } }, vi.fn());
    expect(screen.getByText('Previous').closest('button')).toBeDisabled();
  });
});
