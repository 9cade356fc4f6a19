/**
 * The static summary and details deployctl gives each workflow it starts
 * (Temporal's user metadata, issue 16 item 9): the Temporal UI shows them at
 * the top of the workflow's page, so a person sees what was asked for
 * without opening the input JSON. They say what was asked, in the words of
 * the input; what the worker resolved it to (project, default environment,
 * strategy) is in the workflow's current details, which the workflow keeps
 * up to date.
 */
import type { DeployInput, ReleaseInput, RollbackInput } from '../domain/input';

export interface StartMetadata {
  staticSummary: string;
  staticDetails: string;
}

const quoted = (v: unknown) => `\`${JSON.stringify(v)}\``;

function detailsOf(input: object, requestedBy: string | undefined): string {
  return [`**requested by:** ${requestedBy ?? 'unknown'} (from deployctl)`, `**input:** ${quoted(input)}`].join('\n');
}

/** "deploy 1.0.1 to production (canary)", "dry run: deploy the next patch version to the default environment". */
export function deployMetadata(input: DeployInput): StartMetadata {
  const what = input.version ?? `the next ${input.bump ?? ''} version`.replace('  ', ' ');
  const where = input.environment ?? 'the default environment';
  const how = input.strategy ? ` (${input.strategy})` : '';
  const services = input.services?.length ? `, only ${input.services.join(', ')}` : '';
  return {
    staticSummary: `${input.dryRun ? 'dry run: ' : ''}deploy ${what} to ${where}${how}${services}`,
    staticDetails: detailsOf(input, input.requestedBy),
  };
}

/** "roll back production to the previous revision", "... to 1.0.0, then restore the database on approval". */
export function rollbackMetadata(input: RollbackInput): StartMetadata {
  const where = input.environment ?? 'the default environment';
  const to = input.toVersion
    ? input.toVersion
    : input.toRevision
      ? `revision ${input.toRevision}`
      : 'the previous revision';
  const db = input.restoreDatabase ? ', then restore the database on approval' : '';
  const why = input.reason ? `: ${input.reason}` : '';
  return {
    staticSummary: `roll back ${where} to ${to}${db}${why}`.slice(0, 200),
    staticDetails: detailsOf(input, input.requestedBy),
  };
}

/** "release 1.0.1 through staging, production", "release 1.0.1 through the configured stages". */
export function releaseMetadata(input: ReleaseInput): StartMetadata {
  return {
    staticSummary: `release ${input.version} through ${input.through?.join(', ') ?? 'the configured stages'}`,
    staticDetails: detailsOf(input, input.requestedBy),
  };
}
