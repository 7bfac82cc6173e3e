import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';
import react from '@vitejs/plugin-react';

// Kernel tests run on SwiftShader (Debian's chromium ships it) unless the caller names a Vulkan driver.
const softwareGpu = {
  VK_ICD_FILENAMES: process.env.VK_ICD_FILENAMES ?? '/usr/lib/chromium/vk_swiftshader_icd.json',
};

// The embedded model's checks are one long prefill each on SwiftShader (minutes). A clean checkout
// has no timings for vitest to order files by, so it would start them last, on one worker, after
// the others: started first, the other files fill the second worker meanwhile.
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
    // The kernel tests spend much of their time in SwiftShader's single-threaded stretches, so two
    // test files at once keep even a 2-core machine busy (vitest's default there is one).
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
          env: softwareGpu,
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          include: ['tests/e2e/**/*.test.ts'],
          environment: 'node',
          testTimeout: 180_000,
          hookTimeout: 180_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
