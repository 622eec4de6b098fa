// The microphone page: bundled as the kernel page is (workspace sources, TypeScript), into the
// same folder (the TypeScript plugin's outDir must lie inside the output folder).
import { fileURLToPath } from 'node:url';
import kernelPage from '../rollup.config.mjs';

export default {
  ...kernelPage,
  input: { microphone: fileURLToPath(new URL('./page.mjs', import.meta.url)) },
  output: { ...kernelPage.output, chunkFileNames: 'microphone-[name]-[hash].js' },
};
