/**
 * Metric templates for the query languages other than PromQL (InfluxQL,
 * Graphite targets, URLs): the same placeholders as domain/promql.ts, each
 * language escaping the values it puts in, so a track, version or namespace
 * can never change what a query selects. Pure: the providers in
 * activities/analysis/ send what this renders.
 */
import { parseDuration } from './duration';
import { TemplateError, type TemplateValues } from './promql';

export { TemplateError };

const PLACEHOLDER_RE = /\{\{\s*([^}]*?)\s*\}\}/g;
const DURATION_RE = /^\d{1,6}(ms|s|m|h|d)$/;

/** How one query language writes what a template is filled with. */
export interface TemplateDialect {
  /** A track, version or namespace, made inert in the language (quoted, sanitised or encoded). */
  value(raw: string): string;
  /** A window or step (`30s`, `5m`), already checked to be one. */
  duration(raw: string): string;
  /** A time as whole seconds since the epoch ({{start}}, {{end}}), for the languages that need absolute times. */
  epoch?(seconds: number): string;
}

/**
 * The values a samples query may also use: the step between samples; and the
 * time the window ends (ms since the epoch) for {{start}} and {{end}}.
 */
export type SampleValues = TemplateValues & { step?: string; now?: number };

function checkDuration(what: string, raw: string): void {
  if (!DURATION_RE.test(raw)) throw new TemplateError(`${what} must look like 30s or 5m, got ${JSON.stringify(raw)}`);
}

/**
 * Fills {{track}}, {{version}}, {{namespace}}, {{window}} (and {{step}} when
 * given; {{start}} and {{end}}, the window's bounds in epoch seconds, where
 * the dialect has absolute times) in `template` through `dialect`. Throws TemplateError for an unknown
 * placeholder, a bad window or a {{version}} nobody supplied, so the
 * measurement is inconclusive with that reason.
 */
export function renderTemplate(template: string, values: SampleValues, dialect: TemplateDialect): string {
  checkDuration('window', values.window);
  if (values.step !== undefined) checkDuration('step', values.step);
  return template.replace(PLACEHOLDER_RE, (_m, name: string) => {
    switch (name) {
      case 'track':
        return dialect.value(values.track);
      case 'namespace':
        return dialect.value(values.namespace);
      case 'window':
        return dialect.duration(values.window);
      case 'step':
        if (values.step === undefined) throw new TemplateError('{{step}} is only filled in a samplesQuery');
        return dialect.duration(values.step);
      case 'start':
      case 'end': {
        if (!dialect.epoch) throw new TemplateError(`{{${name}}} is only filled in a web provider's URL`);
        // The caller reads the clock: this module stays pure.
        if (values.now === undefined) throw new TemplateError(`{{${name}}} needs the time the window ends`);
        const end = Math.floor(values.now / 1000);
        return dialect.epoch(name === 'end' ? end : end - windowSeconds(values.window));
      }
      case 'version':
        if (values.version === undefined || values.version === '')
          throw new TemplateError(`the query uses {{version}} but the ${values.track} version is not known`);
        return dialect.value(values.version);
      default:
        throw new TemplateError(`unknown placeholder {{${name}}}`);
    }
  });
}

/** Whole seconds of a window such as `5m` (at least 1). */
export function windowSeconds(window: string): number {
  return Math.max(1, Math.round(parseDuration(window) / 1000));
}

/** A one-line, clipped rendering of a backend's message. */
export function clip(text: string, max = 200): string {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return oneLine.length > max ? `${oneLine.slice(0, max)}...` : oneLine;
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
