import { ACQUIRE } from './acquire';
import { ACQUIRE_JOB } from './acquire-job';
import { CANCEL_ACQUISITION } from './cancel-acquisition';
import { EXTEND_IF_OWNER } from './extend-if-owner';
import { RELEASE_AND_RECORD } from './release-and-record';
import { RELEASE_IF_OWNER } from './release-if-owner';
import { CLAIM_OCCURRENCE } from './claim-occurrence';
import { CANCEL_CLAIM, COUNT_FAILURES, READ_LEDGER, SETTLE_OCCURRENCE } from './ledger-scripts';

export { ACQUIRE, ACQUIRE_CODE, acquireReplyOf, sendAcquire, setReplyOf } from './acquire';
export { ACQUIRE_JOB, sendAcquireJob } from './acquire-job';
export { CANCEL_ACQUISITION, sendCancelAcquisition } from './cancel-acquisition';
export { EXTEND_IF_OWNER, sendExtendIfOwner } from './extend-if-owner';
export { LuaScript } from './lua-script';
export { RELEASE_AND_RECORD, sendReleaseAndRecord } from './release-and-record';
export { RELEASE_IF_OWNER, sendReleaseIfOwner } from './release-if-owner';

/** The scripts of job policies: loaded on each connection once a job with a policy is adopted. */
export const POLICY_SCRIPTS = [CLAIM_OCCURRENCE, SETTLE_OCCURRENCE, CANCEL_CLAIM, READ_LEDGER, COUNT_FAILURES];

/** Every script the store sends, loaded on each connection ahead of the first call. */
export const LOCK_SCRIPTS = [
  ACQUIRE,
  ACQUIRE_JOB,
  RELEASE_IF_OWNER,
  RELEASE_AND_RECORD,
  EXTEND_IF_OWNER,
  CANCEL_ACQUISITION,
];
export { CLAIM_OCCURRENCE, sendClaimOccurrence } from './claim-occurrence';
export {
  CANCEL_CLAIM,
  COUNT_FAILURES,
  failureStreakOf,
  READ_LEDGER,
  sendCountFailures,
  SETTLE_OCCURRENCE,
  sendCancelClaim,
  ledgerReadOf,
  sendReadLedger,
  sendSettleOccurrence,
} from './ledger-scripts';
