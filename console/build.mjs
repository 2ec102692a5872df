// Bundles the console (src/main.js + src/style.css + src/index.html) into
// OUTDIR/{index.html,app.js,app.css} with esbuild: minified, one file each, no
// source maps, nothing fetched at run time. Called by meson (src/console/meson.build).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = process.argv[2];
if (!out) {
  console.error('usage: node build.mjs OUTDIR');
  process.exit(2);
}
if (!existsSync(join(here, 'node_modules', 'esbuild'))) {
  console.error(`console: ${here}/node_modules is missing: run scripts/deps.sh build (npm ci in console/)`);
  process.exit(1);
}
const esbuild = await import('esbuild');
mkdirSync(out, { recursive: true });
await esbuild.build({
  entryPoints: { app: join(here, 'src', 'main.js') },
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['es2020'],
  outdir: out,
  legalComments: 'none',
  logLevel: 'warning',
});
const css = [join(here, 'node_modules', 'uplot', 'dist', 'uPlot.min.css'), join(here, 'src', 'style.css')];
await esbuild.build({
  stdin: { contents: css.map((f) => readFileSync(f, 'utf8')).join('\n'), loader: 'css' },
  minify: true,
  outfile: join(out, 'app.css'),
  logLevel: 'warning',
});
writeFileSync(join(out, 'index.html'), readFileSync(join(here, 'src', 'index.html')));
