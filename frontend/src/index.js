// The server's entry point: Volto's server-side rendering and API proxy.
import startServer from '@plone/volto/start-server';

const reloadServer = startServer();

if (module.hot) {
  reloadServer();
}
