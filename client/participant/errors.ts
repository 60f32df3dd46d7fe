// The participant's typed errors, and the translation of the contract's reverts a participant
// meets into them (each with the command that fixes it).
import { PHASES } from "../../lib/chain/coordinator.js";
import { ContractRevertError } from "../../lib/chain/revert.js";
import { AnchorFLError } from "../../lib/errors.js";

export class ParticipantError extends AnchorFLError {}

/** Free stake below the task's minimum. */
export class NotEnoughStakeError extends ParticipantError {}

/** The round is not in the phase the operation needs (or no round is open). */
export class RoundNotOpenError extends ParticipantError {}

/** The global model found does not match what the chain says it should be. */
export class ModelMismatchError extends ParticipantError {}

/** A round's report does not match the rewards root on chain: no claim is sent against it. */
export class RewardReportMismatchError extends ParticipantError {}

/** Token balance or permit problems when staking. */
export class StakeTokenError extends ParticipantError {}

const phaseOf = (v: unknown) => PHASES[Number(v)] ?? String(v);

/** Turns the reverts a participant can cause into typed errors with a hint; anything else passes through. */
export function explainRevert(error: unknown, taskId: bigint): unknown {
  if (!(error instanceof ContractRevertError)) return error;
  const a = error.errorArgs;
  switch (error.errorName) {
    case "InsufficientFreeStake":
      return new NotEnoughStakeError(`task ${taskId} needs ${a.needed} units of free stake, you have ${a.available}`, {
        hint: `stake more with \`anchorfl client join --task ${taskId} --stake <tokens>\` (stake pending withdrawal does not count)`,
        details: { needed: a.needed, available: a.available },
        cause: error,
      });
    case "UnexpectedRoundPhase":
      return new RoundNotOpenError(`task ${taskId} round ${a.round} is in phase ${phaseOf(a.current)}: ${error.message.split("\n")[0]}`, {
        hint: "wait for the next round (`anchorfl client run` without --once polls for it)",
        cause: error,
      });
    case "UnexpectedRound":
      return new RoundNotOpenError(`task ${taskId} moved on to round ${a.expected} (the transaction targeted round ${a.found})`, { cause: error });
    case "PermitAllowanceTooLow":
      return new StakeTokenError(`the stake token did not accept the permit: allowance ${a.allowance} is below the ${a.needed} deposit`, {
        hint: "the token must implement EIP-2612 permit; otherwise approve the coordinator first",
        cause: error,
      });
    default:
      return error;
  }
}
