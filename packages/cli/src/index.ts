export { inspect, type InspectReport } from './inspect.js';
export {
  parseRunCaseArgs, runCase, type DeviceKind, type RunCaseOptions, type RunCaseResult, type Stage, type StageContext,
} from './runCase.js';
export { STAGES } from './stages.js';
