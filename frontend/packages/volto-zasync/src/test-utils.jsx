/**
 * Rendering a page as Volto would: a real Redux store with the add-on's reducer,
 * react-intl, a router. Requests go to `backend`, a stand-in for the REST services
 * (a function of method and path that answers or throws like superagent).
 */
import React from 'react';
import { render } from '@testing-library/react';
import { Provider } from 'react-intl-redux';
import { MemoryRouter, Route } from 'react-router-dom';
import { applyMiddleware, combineReducers, createStore } from 'redux';
import { PluggablesProvider } from '@plone/volto/components/manage/Pluggable';
import zasync from './reducers';

export function storeFor(backend, initial = {}) {
  const requests = [];
  // Volto's api middleware, reduced to what the add-on uses: the request's promise.
  const api = () => (next) => (action) => {
    const { request, type, ...rest } = action;
    if (!request) return next(action);
    requests.push(request);
    next({ ...rest, type: `${type}_PENDING` });
    return Promise.resolve()
      .then(() => backend(request.op, request.path, request.data))
      .then(
        (result) => {
          next({ ...rest, result, type: `${type}_SUCCESS` });
          return result;
        },
        (error) => {
          next({ ...rest, error, type: `${type}_FAIL` });
          throw error;
        },
      );
  };
  const reducers = combineReducers({
    zasync,
    intl: (state = { locale: 'en', messages: {} }) => state,
    userSession: (state = initial.userSession || { token: null }) => state,
    actions: (state = initial.actions || { actions: { object: [] } }) => state,
    content: (state = { data: {}, get: {} }) => state,
    apierror: (state = {}) => state,
    types: (state = { types: [] }) => state,
    toolbar: (state = { expanded: true }) => state,
  });
  const store = createStore(reducers, {}, applyMiddleware(api));
  store.requests = requests;
  return store;
}

/** An HTTP error as superagent rejects it. */
export function httpError(status, message) {
  return { status, response: { status, body: { error: { type: 'Error', message } } } };
}

export function renderPage(Component, { path, route = path, store }) {
  const [pathname, search = ''] = path.split('?');
  return render(
    <Provider store={store}>
      <PluggablesProvider>
        <MemoryRouter initialEntries={[path]}>
          <Route
            path={route.split('?')[0]}
            render={(props) => (
              <Component {...props} location={{ ...props.location, pathname, search: search && `?${search}` }} />
            )}
          />
        </MemoryRouter>
      </PluggablesProvider>
    </Provider>,
  );
}
