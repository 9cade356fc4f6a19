/**
 * The custom search attributes the workflows upsert, so the Temporal UI and
 * `deployctl list` can find deployments by environment, version, strategy and
 * phase. The dev server started by `npm start` registers them; a hosted or
 * self-run server needs `temporal operator search-attribute create` once.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const SEARCH_ATTRIBUTE_KEYS = [
  defineSearchAttributeKey('DeployEnvironment', SearchAttributeType.KEYWORD),
  defineSearchAttributeKey('DeployVersion', SearchAttributeType.KEYWORD),
  defineSearchAttributeKey('DeployStrategy', SearchAttributeType.KEYWORD),
  defineSearchAttributeKey('DeployPhase', SearchAttributeType.KEYWORD),
  // A release's version and the stage (environment) of the release or its stage's deployment.
  defineSearchAttributeKey('DeployRelease', SearchAttributeType.KEYWORD),
  defineSearchAttributeKey('DeployStage', SearchAttributeType.KEYWORD),
];

export const SEARCH_ATTRIBUTE_NAMES = SEARCH_ATTRIBUTE_KEYS.map((k) => k.name);
