// Volto's build configuration, unchanged.
module.exports = require('@plone/volto/razzle.config');
