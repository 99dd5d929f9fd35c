export { default } from '@plone/volto/reducers';
