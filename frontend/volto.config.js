// The add-ons this development site loads (read by @plone/registry).
module.exports = {
  addons: ['@plone-collective/volto-zasync'],
  theme: '',
};
