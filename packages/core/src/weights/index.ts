/**
 * Weight store: safetensors checkpoints, read a tensor at a time.
 *
 * Opening
 * - `openCheckpoint(input, options?)` → `Checkpoint`. `input`: a folder (Node path, http(s) URL prefix,
 *   or `CheckpointFiles` such as `blobFiles(fileList)`), its `model.safetensors.index.json` (sharded),
 *   a single `.safetensors` path/URL, or the bytes/Blob/`ByteSource` of one file. A folder uses the index
 *   when present, else `model.safetensors`. `checkpoint.readText('config.json')` reads side files.
 * - `openSafetensors(input, options?)` → `Checkpoint` over one file (no folder).
 * - options: `onProgress({ bytesDone, bytesTotal, tensor })`, `signal` (AbortSignal),
 *   `maxUnrangedBytes` (URL whose server ignores Range: largest full download accepted), `fetch`.
 * Only headers are read when opening; headers are fully validated then.
 * - A folder `omniweb convert` wrote (`omniweb.json` + ≤ 256 MiB shards, matrices already in one
 *   device format) opens the same way: every listed file is checked against its size and sha256
 *   first (TRUNCATED, HASH_MISMATCH, MISSING_TENSOR), then `readMatrix(name, thatFormat)` returns
 *   the stored matrix (another format: WRONG_DTYPE). Options `cache` (a `ModelCache`:
 *   `defaultModelCache()` = OPFS, else Cache API, else memory; `memoryCache`, `opfsCache`,
 *   `cacheApiCache`) keeps verified files between loads, keyed by URL + size + sha256, so a cut-off
 *   load resumes after the last good file; `onWarning({ kind: 'cache-full', message })` says when a
 *   full cache made the load go on without it (the rest read from the network, not kept).
 *
 * Reading (each call reads that tensor's bytes from its file; nothing is cached)
 * - `names()`, `has(name)`, `info(name)` → `{ name, dtype, shape, byteOffset, byteLength, file }`, `bytesTotal`.
 * - `readF32(name)` (F32/F16/BF16 → Float32Array), `readInt32(name)` (I64 in range/I32/U8 → Int32Array),
 *   `readArray(name)` → `HostArray { dtype: 'f32'|'i32'|'u8', shape, data }`.
 * - `readMatrix(name, 'f32'|'f16'|'q8'|'q4')` → core `HostMatrix` `[shape[0], product(rest)]`,
 *   converted a block of rows at a time (q8/q4 via quant.ts); `readMatrixRows(name, format, first, count)`
 *   for a row range; `readStored(name)`: the bytes as stored; `convertedFormat(name)`: the format a converted matrix is stored in, else null.
 * - `close()` releases file handles.
 *
 * Case files
 * - `readCase(input)` → `Map<name, HostArray>` of every array (I64 → Int32Array, refused when out of int32 range).
 * - `writeSafetensors(entries, metadata?)` → bytes (i32 written as I64, like the golden files).
 *
 * Writing big files
 * - `streamSafetensors(sink, tensors, tensorBytes, metadata?)`: header first, then each tensor's bytes as
 *   its producer yields them, so neither a file nor a tensor is ever held whole. `fileSink(path)` (Node),
 *   `planSafetensors(tensors)` (the shared layout), `encodeFloat(dtype, f32)` (F32/F16/BF16 bytes).
 *
 * Speakers
 * - `readSpeakers(bytes)` → `Map<name, { cond, refMel, bosToken }>` from `spk_dict.pt` (torch.save zip; a
 *   restricted unpickler that runs no code), `writeSpeakers(map, { storage })` → the same format.
 *
 * Byte sources: `pathSource(path)` (Node file handle), `urlSource(url)` (HTTP Range), `blobSource(blob)`,
 * `bytesSource(bytes)`; folders: `directoryFiles`, `urlFiles`, `blobFiles`.
 *
 * Model loaders
 * - `modelWeights(backend, source, format, { prefix, config })` → `{ matrix(name, shape, because), vector(name, length, because) }`:
 *   each tensor's shape is checked against what the config implies (SHAPE_MISMATCH naming the tensor) before it is
 *   read and uploaded. `checkWeightShape` and `checkWeightFormat` for loaders that rearrange values on the host.
 *   `WeightSource`: what they read (a `Checkpoint` fits).
 *
 * Errors (OmniError): TRUNCATED, HASH_MISMATCH, BAD_HEADER, BAD_OFFSETS, SHAPE_MISMATCH, UNSUPPORTED_DTYPE,
 * MISSING_TENSOR (with the file or shard index it was looked up in), WRONG_DTYPE, IO, ABORTED.
 * Speaker files: BAD_HEADER (zip or pickle not as torch.save writes them, refused globals), TRUNCATED,
 * SHAPE_MISMATCH (a tensor outside its storage), UNSUPPORTED_DTYPE (big-endian file).
 */
export { blobSource, bytesSource, pathSource, urlSource, type ByteSource, type UrlSourceOptions } from './byteSource.js';
export { DTYPE_BYTES, encodeFloat, type FloatDtype, type SafetensorsDtype } from './dtypes.js';
export { MAX_HEADER_BYTES, readHeader, type SafetensorsHeader, type TensorInfo } from './header.js';
export {
  TensorStore, type ConvertedMatrix, type ConvertedPart, type HostArray, type ReadProgress, type StoredTensor, type StoreEntry, type StoreOptions,
} from './tensorStore.js';
export {
  convertedRowBytes, isConvertedMatrix, MANIFEST_FILE, MANIFEST_FORMAT, MANIFEST_VERSION, MAX_SHARD_BYTES, parseManifest, partDataName, partScalesName,
  type Manifest, type ManifestFile, type ManifestMatrix, type MatrixPart,
} from './manifest.js';
export type { ConvertedOptions, LoadWarning } from './converted.js';
export {
  cacheApiCache, defaultModelCache, memoryCache, opfsCache, type CacheKey, type ModelCache, type ModelCacheKind,
} from './modelCache.js';
export { sha256Hex } from './sha256.js';
export {
  blobFiles, Checkpoint, directoryFiles, INDEX_FILE, openByteSource, openCheckpoint, openSafetensors, SINGLE_FILE, urlFiles,
  type CheckpointFiles, type CheckpointInput, type OpenOptions, type SafetensorsInput,
} from './checkpoint.js';
export { readCase, writeSafetensors } from './caseFile.js';
export {
  checkWeightFormat, checkWeightShape, modelWeights, WEIGHT_FORMATS, type ModelWeightsOptions, type WeightSource,
} from './modelWeights.js';
export {
  fileSink, planSafetensors, streamSafetensors, type ByteSink, type PlannedTensor, type SafetensorsPlan, type TensorBytes, type TensorSpec,
} from './safetensorsWriter.js';
export { readSpeakers, SPEAKERS_FILE, writeSpeakers, type Speaker } from './speakers.js';
