// The project configures nothing itself: everything is in the add-ons of volto.config.js.
import '@plone/volto/config';

export default function applyConfig(config) {
  return config;
}
