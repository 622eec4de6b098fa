/**
 * The stage worker's entry (`@omniweb/orchestrator/worker`): an app bundles this module as
 * its own input and passes its URL as `workerUrl`. The driver's thread tells it which stage to
 * load.
 */
import { serveInWorker, StageHost } from './workerHost.js';

void serveInWorker(new StageHost());
