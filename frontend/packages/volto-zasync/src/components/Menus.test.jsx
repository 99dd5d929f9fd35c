import React from 'react';
import { render, screen } from '@testing-library/react';
import { Provider } from 'react-intl-redux';
import { MemoryRouter } from 'react-router-dom';
import { Pluggable, PluggablesProvider } from '@plone/volto/components/manage/Pluggable';
import Menus from './Menus';
import { storeFor } from '../test-utils';

function renderMenus(state, pathname) {
  const store = storeFor(() => ({}), state);
  return render(
    <Provider store={store}>
      <PluggablesProvider>
        <MemoryRouter>
          <ul className="user-menu">
            <Pluggable name="toolbar-user-menu" />
          </ul>
          <ul className="more-menu">
            <Pluggable name="toolbar-more-menu-list" />
          </ul>
          <Menus pathname={pathname} />
        </MemoryRouter>
      </PluggablesProvider>
    </Provider>,
  );
}

describe('Toolbar links', () => {
  it('puts My jobs in the personal menu and an item\'s jobs in More for an editor', async () => {
    renderMenus(
      { userSession: { token: 'x' }, actions: { actions: { object: [{ id: 'view' }, { id: 'edit' }] } } },
      '/news/item',
    );
    expect((await screen.findByText('My jobs')).closest('a')).toHaveAttribute('href', '/my-jobs');
    expect(screen.getByText('Background jobs').closest('a')).toHaveAttribute('href', '/news/item/background-jobs');
  });

  it('shows no item jobs to who may not modify the item', async () => {
    renderMenus({ userSession: { token: 'x' }, actions: { actions: { object: [{ id: 'view' }] } } }, '/news');
    await screen.findByText('My jobs');
    expect(screen.queryByText('Background jobs')).toBeNull();
  });
});
