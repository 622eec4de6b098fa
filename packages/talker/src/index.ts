export {
  Talker, TalkerStream, TALKER_MAX_NEW_TOKENS, TALKER_SAMPLING,
  type TalkerConfig, type TalkerWeights, type TalkerLoadOptions, type TalkerPrompt, type ReplyToken,
  type TalkerStartOptions, type TalkerStepInspection, type CodesOptions,
} from './talker.js';
