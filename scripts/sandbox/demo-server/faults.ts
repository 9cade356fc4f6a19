/**
 * Faults injected through the /__sandbox control API: checking requests,
 * applying them, and keeping them on disk across restarts.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import {
  emptyFaultState,
  trackOfSubset,
  TRACKS,
  type FaultState,
  type HealthFault,
  type TrackFault,
  type Track,
} from './types';
import { describeError, isRecord } from './util';

/** A checked input, or the reason it was refused (meant for the caller's eyes). */
export type Validation<T> = { ok: true; value: T } | { ok: false; error: string };

/** What a valid POST /__sandbox/fault asks for. */
export type FaultCommand = { kind: 'clear' } | { kind: 'set'; track: Track; fault: TrackFault };

const FAULT_FIELDS = new Set(['track', 'errorRate', 'latencyMs', 'latencyFactor']);

/** Checks a POST /__sandbox/fault body; errors name the field and what it must be. */
export function validateFaultRequest(body: unknown): Validation<FaultCommand> {
  if (!isRecord(body)) return { ok: false, error: 'body must be a JSON object' };
  if ('clear' in body) {
    if (body.clear !== true) return { ok: false, error: 'clear must be true' };
    if (Object.keys(body).length !== 1) return { ok: false, error: 'clear cannot be combined with other fields' };
    return { ok: true, value: { kind: 'clear' } };
  }
  // Unknown keys are refused so a typo such as "error_rate" does not silently inject nothing.
  const unknown = Object.keys(body).filter((key) => !FAULT_FIELDS.has(key));
  if (unknown.length > 0) return { ok: false, error: `unknown field(s): ${unknown.join(', ')}` };
  const track = trackOfSubset(body.track);
  if (!track)
    return { ok: false, error: `track must be "stable" or "canary", got ${JSON.stringify(body.track) ?? 'nothing'}` };
  if (body.errorRate === undefined && body.latencyMs === undefined && body.latencyFactor === undefined) {
    return { ok: false, error: 'give errorRate (0..1), latencyMs (>= 0) and/or latencyFactor (0.1..100)' };
  }
  const errorRate = body.errorRate ?? 0;
  if (typeof errorRate !== 'number' || !Number.isFinite(errorRate) || errorRate < 0 || errorRate > 1) {
    return { ok: false, error: `errorRate must be a number between 0 and 1, got ${JSON.stringify(errorRate)}` };
  }
  const latencyMs = body.latencyMs ?? 0;
  if (typeof latencyMs !== 'number' || !Number.isFinite(latencyMs) || latencyMs < 0) {
    return { ok: false, error: `latencyMs must be a number >= 0, got ${JSON.stringify(latencyMs)}` };
  }
  const factor = body.latencyFactor;
  if (
    factor !== undefined &&
    (typeof factor !== 'number' || !Number.isFinite(factor) || factor < 0.1 || factor > 100)
  ) {
    return { ok: false, error: `latencyFactor must be a number from 0.1 to 100, got ${JSON.stringify(factor)}` };
  }
  return {
    ok: true,
    value: {
      kind: 'set',
      track,
      fault: { errorRate, latencyMs, ...(factor !== undefined ? { latencyFactor: factor } : {}) },
    },
  };
}

/** Checks a POST /__sandbox/health body. */
export function validateHealthRequest(body: unknown): Validation<HealthFault> {
  if (!isRecord(body)) return { ok: false, error: 'body must be a JSON object' };
  if (typeof body.fail !== 'boolean') return { ok: false, error: 'fail must be true or false' };
  if (!body.fail) return { ok: true, value: { fail: false } };
  if (body.reason !== undefined && typeof body.reason !== 'string')
    return { ok: false, error: 'reason must be a string' };
  return { ok: true, value: { fail: true, reason: body.reason || 'fault injected' } };
}

const CONTAINER_RE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** Checks a POST /__sandbox/log-errors body: the containers whose logs get error lines (none clears). */
export function validateLogErrorsRequest(body: unknown): Validation<string[]> {
  if (!isRecord(body) || !Array.isArray(body.containers))
    return { ok: false, error: 'containers must be a list of container names' };
  const bad = body.containers.filter((c) => typeof c !== 'string' || !CONTAINER_RE.test(c));
  if (bad.length) return { ok: false, error: `not container names: ${JSON.stringify(bad)}` };
  return { ok: true, value: [...new Set(body.containers as string[])] };
}

/** Applies a validated fault command without mutating the input; clear also stops error lines in logs. */
export function applyFaultCommand(state: FaultState, command: FaultCommand): FaultState {
  if (command.kind === 'clear') return { ...state, tracks: {}, logErrors: [], preview: { fail: false } };
  return { ...state, tracks: { ...state.tracks, [command.track]: command.fault } };
}

/** Reads a persisted fault state; anything malformed is dropped rather than trusted. */
export function parseFaultState(raw: unknown): FaultState {
  const state = emptyFaultState();
  if (!isRecord(raw)) return state;
  const tracks = isRecord(raw.tracks) ? raw.tracks : {};
  for (const track of TRACKS) {
    const fault = tracks[track];
    if (!isRecord(fault)) continue;
    const checked = validateFaultRequest({
      track,
      errorRate: fault.errorRate,
      latencyMs: fault.latencyMs,
      ...(fault.latencyFactor !== undefined ? { latencyFactor: fault.latencyFactor } : {}),
    });
    if (checked.ok && checked.value.kind === 'set') state.tracks[track] = checked.value.fault;
  }
  const health = validateHealthRequest(raw.health);
  if (health.ok) state.health = health.value;
  const logErrors = validateLogErrorsRequest({ containers: raw.logErrors });
  if (logErrors.ok) state.logErrors = logErrors.value;
  const preview = validateHealthRequest(raw.preview);
  if (preview.ok) state.preview = preview.value;
  return state;
}

/** The persisted faults, or none when the file is absent or unreadable. */
export function loadFaultState(file: string | undefined, log: (line: string) => void): FaultState {
  if (!file || !existsSync(file)) return emptyFaultState();
  try {
    return parseFaultState(JSON.parse(readFileSync(file, 'utf8')));
  } catch (err) {
    log(`demo: ignoring unreadable state file ${file}: ${describeError(err)}`);
    return emptyFaultState();
  }
}

/** Write-then-rename, so a crash mid-write never leaves a truncated file behind. */
export function saveFaultState(file: string | undefined, state: FaultState): void {
  if (!file) return;
  mkdirSync(path.dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(state, null, 2)}\n`);
  renameSync(temporary, file);
}
