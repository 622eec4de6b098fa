/** The perception stage on a backend: preprocessing, then the audio and vision encoders. */
import type { Backend, Tensor } from '@omniweb/core';
import type { AudioEncoder } from '@omniweb/audio-encoder';
import type { PreprocessorConfig } from '@omniweb/media';
import type { VisionEncoder } from '@omniweb/vision-encoder';
import { audioTokenCount } from '@omniweb/tmrope';
import { prepareMedia, type SendInput, type VisualPatches } from './inputs.js';
import type { EmbeddingRows, MediaRowSet, PerceivedMedia, PerceptionStage } from './stages.js';
import { handOver, owned } from './transfer.js';

export class LocalPerception implements PerceptionStage {
  constructor(
    readonly backend: Backend,
    readonly preprocessor: PreprocessorConfig,
    readonly audioEncoder: AudioEncoder,
    readonly visionEncoder: VisionEncoder,
  ) {}

  async perceive(input: SendInput): Promise<PerceivedMedia> {
    const media = await prepareMedia(input, this.preprocessor);
    const rows: MediaRowSet = {};
    if (media.audio) rows.audio = await this.#rows(await this.audioEncoder.encode(media.audio));
    if (media.image) rows.image = await this.#rows((await this.visionEncoder.encode([media.image])).embeddings);
    if (media.video) rows.video = await this.#rows((await this.visionEncoder.encode([media.video])).embeddings);
    return handOver({ layout: media.layout, rows }, [rows.audio?.data, rows.image?.data, rows.video?.data]);
  }

  async encodeAudioBlock(block: { features: Float32Array; frames: number }): Promise<EmbeddingRows | null> {
    if (audioTokenCount(block.frames) === 0) return null;
    // One block is a clip of one attention window: its tokens equal the block's share of the whole clip's.
    const rows = await this.#rows(await this.audioEncoder.encode(block));
    return handOver(rows, [rows.data]);
  }

  async encodeVideoPatch(patch: VisualPatches): Promise<EmbeddingRows> {
    const rows = await this.#rows((await this.visionEncoder.encode([patch])).embeddings);
    return handOver(rows, [rows.data]);
  }

  /** The encoder's output on the host; the tensor is freed. */
  async #rows(tensor: Tensor): Promise<EmbeddingRows> {
    try {
      return { data: owned((await this.backend.read(tensor)) as Float32Array), rows: tensor.shape[0] };
    } finally {
      this.backend.dispose(tensor);
    }
  }
}
