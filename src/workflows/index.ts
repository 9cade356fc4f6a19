/**
 * Every workflow the worker registers (design §3.1), and how each one's runs
 * move between builds of the worker when it runs with worker versioning
 * (support/versioning.ts says why; docs/operations.md has the procedure).
 */
import { blueGreenWorkflow, retireColourWorkflow } from './blue-green';
import { canaryWorkflow } from './canary';
import { deployWorkflow } from './deploy';
import { environmentLockWorkflow } from './environment-lock';
import { freezeWorkflow } from './freeze';
import { quarantineWorkflow } from './quarantine';
import { releaseWorkflow } from './release';
import { rollbackWorkflow } from './rollback';
import { declareVersioning } from './support/versioning';

export {
  deployWorkflow,
  canaryWorkflow,
  blueGreenWorkflow,
  retireColourWorkflow,
  rollbackWorkflow,
  environmentLockWorkflow,
  releaseWorkflow,
  quarantineWorkflow,
  freezeWorkflow,
};

// A deployment finishes on the build it started on; its children on the same task queue start on that build.
declareVersioning(deployWorkflow, 'PINNED');
declareVersioning(canaryWorkflow, 'PINNED');
declareVersioning(blueGreenWorkflow, 'PINNED');
// Also started on its own (deployctl rollback); bounded: its database decision times out into keeping the database.
declareVersioning(rollbackWorkflow, 'PINNED');
// Open exactly as long as its holder, on the holder's build; its continued runs stay there too.
declareVersioning(environmentLockWorkflow, 'PINNED');
// Seconds long.
declareVersioning(quarantineWorkflow, 'PINNED');
// Open for days between stages: it moves on; each stage's deployment pins itself to the build it starts on.
declareVersioning(releaseWorkflow, 'AUTO_UPGRADE');
// Open until a person unfreezes: pinned, it would hold its build's workers up indefinitely.
declareVersioning(freezeWorkflow, 'AUTO_UPGRADE');
// Detached from its blue-green, it outlives the deployment by the colour's delete delay (1h by default).
declareVersioning(retireColourWorkflow, 'AUTO_UPGRADE');
