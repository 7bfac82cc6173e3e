/**
 * Builds the Node entry points (benchmark, later the CLI and sweeps) into single ES modules in
 * dist-cli/, with the WGSL inlined the same way as in the app, so they run on a bare machine with
 * only node and the `webgpu` package (the GPU machine).
 */
import { defineConfig } from 'vite';

export default defineConfig({
  build: {
    ssr: true,
    outDir: 'dist-cli',
    emptyOutDir: true,
    target: 'node20',
    rollupOptions: {
      input: {
        bench: 'src/cli/bench.ts',
        cli: 'src/cli/cli.ts',
        tasks: 'src/cli/tasks.ts',
        sweep: 'src/cli/sweep.ts',
      },
      external: ['webgpu'],
      output: { entryFileNames: '[name].mjs', format: 'es' },
    },
  },
  ssr: { noExternal: true, external: ['webgpu'] },
});
