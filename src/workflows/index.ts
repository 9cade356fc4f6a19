/** Every workflow the worker registers (design §3.1). */
export { canaryWorkflow } from './canary';
