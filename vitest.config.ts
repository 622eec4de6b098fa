import { defineConfig } from 'vitest/config';
import { readdirSync, mkdirSync, chmodSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('.', import.meta.url));
const alias: Record<string, string> = { '@omniweb/kernels': `${root}kernels/index.ts` };
for (const name of readdirSync(`${root}packages`)) alias[`@omniweb/${name}`] = `${root}packages/${name}/src/index.ts`;

// Dawn (the `webgpu` package) needs Chromium's SwiftShader Vulkan driver on GPU-less machines.
const xdg = '/tmp/omniweb-xdg';
mkdirSync(xdg, { recursive: true });
chmodSync(xdg, 0o700);

export default defineConfig({
  resolve: { alias },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'kernels/test/**/*.test.ts', 'bench/test/**/*.test.ts'],
    env: {
      VK_ICD_FILENAMES: process.env.VK_ICD_FILENAMES ?? '/usr/lib/chromium/vk_swiftshader_icd.json',
      XDG_RUNTIME_DIR: xdg,
    },
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    // SwiftShader runs WGSL on the CPU: golden model tests on it take minutes on 2 cores.
    testTimeout: 300_000,
    hookTimeout: 120_000,
  },
});
