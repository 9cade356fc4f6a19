/**
 * Stand-in for the public endpoints of the demo platform "ai-saas", whose
 * Kubernetes pods are fake and serve nothing. It answers the smoke-test
 * endpoints and produces Prometheus metrics for steady synthetic traffic,
 * split between the "stable" and "canary" tracks by the LIVE traffic weights
 * in Kubernetes, so canary analysis has something real to judge. Tests inject
 * faults per track through the /__sandbox control API.
 *
 *   npx tsx scripts/sandbox/demo-server/index.ts
 *
 * Env: DEMO_PORT (8080), DEMO_HOST (127.0.0.1, loopback only), KUBECONFIG,
 * DEMO_NAMESPACE (ai-saas), DEMO_SERVICE (api-gateway), SMOKE_EMAIL,
 * SMOKE_PASSWORD, DEMO_RPS (50), DEMO_STATE_FILE; DEMO_INFLUXDB_URL,
 * DEMO_INFLUXDB_DATABASE (ai_saas), DEMO_INFLUXDB_USERNAME and
 * DEMO_INFLUXDB_PASSWORD, DEMO_CARBON_ADDRESS (host:port): where
 * each 2 s interval's per-track figures are written; DEMO_METRICS_API_KEY:
 * the key GET /api/metrics (those figures as JSON) requires.
 */
import { optionsFromEnv } from './config';
import { startDemoServer } from './server';
import { describeError } from './util';

export {
  DEFAULT_TRAFFIC,
  DURATION_BUCKETS,
  TRACKS,
  UNKNOWN_VERSION,
  VERSION_ANNOTATION,
  emptyFaultState,
  type FaultState,
  type HealthFault,
  type Track,
  type TrackFault,
  type TrackVersions,
  type TrackWeights,
  type TrafficState,
} from './types';
export {
  normaliseWeights,
  readyReplicas,
  resolveTrafficState,
  selectedColour,
  tagOfImage,
  versionFromDeployment,
  weightsFromReplicas,
  weightsFromVirtualService,
  type ClusterObjects,
  type DeploymentLike,
  type ServiceLike,
} from './traffic-state';
export {
  applyFaultCommand,
  parseFaultState,
  validateFaultRequest,
  validateHealthRequest,
  type FaultCommand,
  type Validation,
} from './faults';
export { generateTraffic, pickTrack, simulateRequest, type Random, type SimulatedRequest } from './synthetic-traffic';
export {
  TrafficMetrics,
  escapeLabelValue,
  renderMetrics,
  type DurationHistogram,
  type MetricsSnapshot,
  type RequestCounter,
  type SeriesLabels,
} from './metrics';
export {
  isLoopbackHost,
  optionsFromEnv,
  type Credentials,
  type DemoServerHandle,
  type DemoServerOptions,
  type TrafficSource,
} from './config';
export { p95, TrackFigures, type IntervalFigures } from './figures';
export {
  carbonLines,
  escapeTagValue,
  graphitePath,
  influxLines,
  INFLUX_MEASUREMENT,
  metricsFeed,
  type FeedTargets,
  type SeriesIdentity,
} from './feeds';
export { ContainerLogs, criLine, INJECTED_ERROR_LINE, trafficLogLines } from './container-logs';
export { kubeTrafficSource } from './kube-reader';
export { startDemoServer } from './server';

function exitWithError(context: string): (err: unknown) => void {
  return (err) => {
    console.error(`demo: ${context}${describeError(err)}`);
    process.exit(1);
  };
}

async function main(): Promise<void> {
  const handle = await startDemoServer(optionsFromEnv(process.env));
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    console.log(`demo: ${signal}, shutting down`);
    handle.close().then(() => process.exit(0), exitWithError('shutdown failed: '));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

if (require.main === module) {
  main().catch(exitWithError(''));
}
