import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';
import react from '@vitejs/plugin-react';

// Kernel tests run on SwiftShader (Debian's chromium ships it) unless the caller names a Vulkan driver.
const softwareGpu = {
  VK_ICD_FILENAMES: process.env.VK_ICD_FILENAMES ?? '/usr/lib/chromium/vk_swiftshader_icd.json',
};

// One run holds the unit, kernel and end-to-end files (npm test builds dist/ first). The embedded
// model's checks are one long prefill each on SwiftShader (minutes). A clean checkout has no timings
// for vitest to order files by, so it would start them last, on one worker, after the others:
// started first, the other files fill the second worker meanwhile.
class EmbeddedModelFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const slow = (file: TestSpecification) => file.moduleId.includes('embedded-model');
    return [...sorted.filter(slow), ...sorted.filter((file) => !slow(file))];
  }
}

export default defineConfig({
  plugins: [react()],
  base: './',
  build: { target: 'es2022', chunkSizeWarningLimit: 5000 },
  worker: { format: 'es' },
  test: {
    // Two files at once even on 2 cores: a kernel file spends long stretches in SwiftShader's
    // single-threaded shader compiler, and an end-to-end file mostly waits on Chromium's GPU process.
    // Run beside the kernel files rather than after them, the end-to-end files cost 812 s for the
    // whole run on 2 cores, where the two runs in turn took 622 + 272 s.
    maxWorkers: Math.max(2, availableParallelism() - 1),
    sequence: { sequencer: EmbeddedModelFirst },
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: ['tests/unit/**/*.test.ts'], environment: 'node' },
      },
      {
        extends: true,
        test: {
          name: 'kernels',
          include: ['tests/kernels/**/*.test.ts'],
          environment: 'node',
          pool: 'forks',
          // A worker runs its files in one process, so they share one GPU context and its compiled
          // pipelines (tests/support/gpu.ts).
          isolate: false,
          env: softwareGpu,
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          // Each file serves dist/ on its own free port to its own Chromium: files can overlap.
          include: ['tests/e2e/**/*.test.ts'],
          environment: 'node',
          testTimeout: 180_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});
