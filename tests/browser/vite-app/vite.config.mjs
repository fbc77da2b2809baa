import { defineConfig } from 'vite';

// The package's worker imports the wasm glue as an ES module: workers must be bundled as ES.
export default defineConfig({
  logLevel: 'warn',
  worker: { format: 'es' },
  build: { target: 'es2022', emptyOutDir: true },
});
