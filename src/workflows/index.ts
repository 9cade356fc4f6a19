/** Every workflow the worker registers (design §3.1). */
export { deployWorkflow } from './deploy';
export { canaryWorkflow } from './canary';
export { blueGreenWorkflow, retireColourWorkflow } from './blue-green';
export { rollbackWorkflow } from './rollback';
export { environmentLockWorkflow } from './environment-lock';
export { releaseWorkflow } from './release';
export { quarantineWorkflow } from './quarantine';
export { freezeWorkflow } from './freeze';
