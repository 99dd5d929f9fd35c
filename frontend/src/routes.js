export { default } from '@plone/volto/routes';
