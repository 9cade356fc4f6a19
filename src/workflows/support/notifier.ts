/**
 * Notifications as every workflow sends them: best effort, so a failing
 * webhook never fails a deployment; failures are counted in the status.
 */
import { log } from '@temporalio/workflow';
import type { NotificationEvent, NotificationKind } from '../../activities/contracts';
import { notifier, withSummary } from '../activity-options';
import { describeError, type Tracker } from './tracker';

/** Sends one notification about this workflow's deployment. */
export type Notify = (kind: NotificationKind, text: string, extra?: Partial<NotificationEvent>) => Promise<void>;

/** Who the notification is about, read when it is sent (the plan may arrive after the first one). */
export type NotifyAbout = () => { project?: string; uiUrl?: string };

/**
 * The notify function of one workflow. `workflowId` is the one people act on
 * (a child names its parent); version and environment are the status's at the
 * time of sending.
 */
export function notifierFor(t: Tracker, workflowId: string, about: NotifyAbout): Notify {
  const status = t.status;
  return async (kind, text, extra = {}) => {
    try {
      const r = await withSummary(`notify: ${kind}`, () =>
        notifier.notify({
          kind,
          workflowId,
          environment: status.environment,
          version: status.version,
          text,
          ...about(),
          ...extra,
        }),
      );
      status.notificationFailures += r.failed;
    } catch (err) {
      status.notificationFailures += 1;
      log.warn('notification failed', { kind, error: describeError(err) });
    }
  };
}

/** What the plan says about the project, for notifications (nothing before there is a plan). */
export function aboutPlan(plan: { project: string; uiUrl?: string } | undefined): { project?: string; uiUrl?: string } {
  return plan ? { project: plan.project, ...(plan.uiUrl ? { uiUrl: plan.uiUrl } : {}) } : {};
}
