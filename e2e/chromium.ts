/** Headless Chromium as this machine runs it (RECIPES.md): the system browser, with the flags that give it WebGPU. */
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync',
  // What gives navigator.gpu.requestAdapter() an adapter (SwiftShader) without a GPU.
  '--enable-unsafe-webgpu',
];

export function launchChromium(extraArgs: readonly string[] = []): Promise<Browser> {
  // headless: true lets Playwright add its own headless flag; passing one ourselves drops both.
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: [...CHROMIUM_ARGS, ...extraArgs] });
}
