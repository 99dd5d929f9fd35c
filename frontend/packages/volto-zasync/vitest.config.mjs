// Unit tests of the add-on with Vitest, in Volto's test setting (jsdom, its
// test configuration registry, its SVG loader), against @plone/volto's sources.
import { defineConfig } from 'vitest/config';
import react from '@vitejs/plugin-react';
import path from 'path';
import { createRequire } from 'module';

const require = createRequire(import.meta.url);
const volto = path.dirname(require.resolve('@plone/volto/package.json'));
const voltoSlate = path.dirname(require.resolve('@plone/volto-slate/package.json'));
const { svgLoader } = await import(path.join(volto, 'vite-plugins/svg.mjs'));

export default defineConfig({
  plugins: [react(), svgLoader()],
  resolve: {
    alias: {
      '@plone/volto': path.join(volto, 'src'),
      '@plone/volto-slate': path.join(voltoSlate, 'src'),
      'promise-file-reader': require.resolve('promise-file-reader'),
      'react-dropzone': require.resolve('react-dropzone'),
      'prop-types': require.resolve('prop-types'),
      'react-intl-redux': require.resolve('react-intl-redux'),
    },
  },
  test: {
    include: ['src/**/*.test.{js,jsx}'],
    globals: true,
    environment: 'jsdom',
    setupFiles: [
      path.join(volto, 'test-setup-globals-vitest.js'),
      path.join(volto, 'test-setup-config.jsx'),
    ],
    css: false,
  },
});
