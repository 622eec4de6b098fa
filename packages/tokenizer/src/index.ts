export { OmniTokenizer, StreamingDecoder, loadTokenizer, TOKENIZER_FILES, type DecodeOptions, type TokenizerFileName, type TokenizerOptions, type TokenizerTexts } from './tokenizer.js';
export { ChatTemplate, OMNI_CHAT_TEMPLATE, type ChatContentItem, type ChatMessage, type ChatOptions } from './chatTemplate.js';
export { expandPlaceholders } from './expand.js';
export { MULTIMODAL_TOKEN_NAMES, OMNI_DEFAULT_SYSTEM_PROMPT, OMNI_SPECIAL_TOKENS, OMNI_SPEECH_SYSTEM_PROMPT } from './specialTokens.js';
