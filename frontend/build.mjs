// Bundles the web map into dist/, which `make build` embeds in the binary
// (build tag webapp, see frontend.go).
// Usage: npm run build (after npm install).
import { copyFile, mkdir, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import * as esbuild from 'esbuild';

const root = path.dirname(fileURLToPath(import.meta.url));
const src = path.join(root, 'src');
const dist = path.join(root, 'dist');

// Start from an empty dist/.
await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });

// main.js imports Leaflet and the CSS; esbuild writes dist/main.js and
// dist/main.css. The PNGs leaflet.css refers to (layer switcher, default
// marker) are copied as files; the map itself uses no images.
await esbuild.build({
  absWorkingDir: root,
  entryPoints: [path.join(src, 'main.js')],
  outdir: dist,
  bundle: true,
  minify: true,
  format: 'esm',
  target: 'es2020',
  loader: { '.png': 'file' },
  assetNames: 'images/[name]-[hash]',
  logLevel: 'info',
});

await copyFile(path.join(src, 'index.html'), path.join(dist, 'index.html'));
