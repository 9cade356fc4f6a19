/** The refusal when another deployment holds an environment, shared by deployments and manual rollbacks. */
import { ErrorType } from '../../domain/errors';
import { short } from '../activity-options';
import { lockWorkflowId } from '../environment-lock';

/** Names the holder (looked up by an activity) and what a person can do about it. */
export async function environmentBusy(environment: string): Promise<string> {
  const holder = await short.lockHolder({ environment }).catch(() => ({ workflowId: undefined }));
  return `${ErrorType.DeploymentInProgress}: another deployment is running on ${environment}: ${holder.workflowId ?? lockWorkflowId(environment)}; wait for it or abort it (deployctl abort ${holder.workflowId ?? '<id>'} --by <name> --reason <text>)`;
}
