export {
  audioInVideoChunks, audioTokenCount, concatPositions, decodePositions, talkerTmropeConfig, thinkerTmropeConfig, tmropePositions, TmropeStream,
  type AudioInVideoChunk, type GridThw, type TmropeConfig, type TmropeInputs, type TmropeResult, type VideoShape,
} from './positions.js';
export { mropeSpec, ropeCosSin, visionRopeSpec } from './rotary.js';
