/** `omniweb inspect`: what a checkpoint or safetensors file holds, as JSON. */
import { loadOmniConfig, type OmniConfig, OmniError, openCheckpoint } from '@omniweb/core';

export interface InspectReport {
  path: string;
  shards: string[];
  /** Validated against the tensor headers; null when no config.json sits beside the weights. */
  config: OmniConfig | null;
  tensorCount: number;
  bytesTotal: number;
  /** Parameter count per top-level prefix (thinker, talker, token2wav, …). */
  parameters: Record<string, number>;
  tensors: { name: string; dtype: string; shape: number[] }[];
}

export async function inspect(path: string): Promise<InspectReport> {
  const checkpoint = await openCheckpoint(path);
  try {
    const hasConfig = checkpoint.files !== null && (await checkpoint.readText('config.json')) !== null;
    const config = hasConfig ? await loadOmniConfig(checkpoint) : null;
    const parameters: Record<string, number> = {};
    const tensors = checkpoint.names().map((name) => {
      const { dtype, shape } = checkpoint.info(name);
      const prefix = name.split('.')[0];
      parameters[prefix] = (parameters[prefix] ?? 0) + shape.reduce((a, b) => a * b, 1);
      return { name, dtype, shape: [...shape] };
    });
    return { path, shards: [...checkpoint.shards], config, tensorCount: tensors.length, bytesTotal: checkpoint.bytesTotal, parameters, tensors };
  } finally {
    await checkpoint.close();
  }
}

export async function inspectCommand(argv: readonly string[]): Promise<void> {
  if (argv.length !== 1 || argv[0].startsWith('--')) {
    throw new OmniError('BAD_INPUT', `inspect takes one path (a checkpoint folder or a .safetensors file), got ${argv.length === 0 ? 'none' : JSON.stringify(argv.join(' '))}`);
  }
  process.stdout.write(`${JSON.stringify(await inspect(argv[0]), null, 1)}\n`);
}
