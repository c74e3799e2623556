// Public API of the checkpoint formats.
export { CheckpointError, type CheckpointErrorCode } from './errors.js';
export {
  RecordType,
  EndMode,
  RecordEncoder,
  RecordDecoder,
  STREAM_MAGIC,
  OPTIONAL_RECORD,
  MAX_RECORD_PAYLOAD,
  KNOWN_RECORD_TYPES,
  isOptionalType,
  type Rec,
  type DecoderOptions,
  type EncoderOptions,
} from './records.js';
export {
  FORMAT_VERSION,
  MAX_PAGES_PER_RECORD,
  PageKind,
  pageDigest,
  computeVerify,
  PageDigests,
  PRESENT,
  isZeroPage,
  moduleHash,
  parseRecord,
  type StreamHeader,
  type CheckpointKind,
  type PageEntry,
  type DecodedPage,
  type SpaceSizes,
  type TypedRecord,
  type EncodeOptions,
} from './stream.js';
export { StreamWriter, type Sink } from './writer.js';
export {
  lz4Compress,
  lz4Decompress,
  compressionGain,
  compressionPays,
  LZ4_MAX_ENTRY,
  type CompressionGain,
} from './compress.js';
export { CheckpointAssembler, recomputeVerify, type Checkpoint } from './assemble.js';
export { readCheckpoint, decodeStream, type ReadOptions } from './checkpoint.js';
export {
  ImageWriter,
  pageOffset,
  IMAGE_MAGIC,
  IMAGE_VERSION,
  type ImageContents,
} from './image.js';
export { ImageReader, readImage } from './image-read.js';
export { streamTarget, fileTarget, type CheckpointTarget } from './target.js';
export { defaultKeyPath, loadKey, loadKeySync, loadOrCreateKey, saveKey } from './keys.js';
export { describeCheckpoint, formatDescription, type CheckpointDescription } from './inspect.js';
export { sampleCheckpoint, writeSample, type SampleCheckpoint } from './sample.js';
