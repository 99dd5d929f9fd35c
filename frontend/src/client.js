// The browser's entry point: Volto's client, with the add-ons of volto.config.js.
import startClient from '@plone/volto/start-client';

startClient();

if (module.hot) {
  module.hot.accept();
}
