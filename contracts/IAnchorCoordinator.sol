// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

// Amounts in events are data, not topics: auditors filter by task, round and account.
// solhint-disable gas-indexed-events

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/**
 * @title IAnchorCoordinator
 * @notice The on-chain half of AnchorFL: one coordinator serves many federated-learning tasks.
 *
 * A task owner creates a task with its config (stake token, windows, slash rates, aggregator set, genesis model)
 * and escrows rewards with {fund}. Participants stake with {deposit} / {depositWithPermit}. The task owner or one of
 * its aggregators opens each round ({openRound}), which then goes through phases derived from stored deadlines
 * (never a flag that can go stale, like Governor.state()):
 *
 *     Commit --(deadline, or maxParticipants commits)--> Reveal --(deadline, or every committer revealed)-->
 *     Aggregation --(quorum of identical results)--> Finalized
 *     Aggregation --(window passes without quorum)--> Failed   (model unchanged; the next round may open)
 *
 * - Commit: a participant with at least `minStake` of free stake (not pending withdrawal) posts
 *   `commitment = keccak256(abi.encode(block.chainid, address(this), taskId, round, participant, updateDigest, salt))`
 *   with types (uint256, address, uint256, uint256, address, bytes32, bytes32); see {commitmentOf}.
 *   Nobody can see or copy an update before commits close, because reveals only start after.
 * - Reveal: the participant discloses `updateDigest` (sha-256 of the whole update file), `numSamples`, `salt` and
 *   `contentRoot` (bytes32(0) when the file is one raw IPFS block, i.e. CIDv1 raw sha2-256 of `updateDigest`;
 *   otherwise the sha2-256 digest of its UnixFS dag-pb root block). The commitment binds the file digest only.
 *   A reveal that does not match its commitment never counts. Reveal data lives in the {Revealed} event only.
 * - No reveal: once the reveal phase is over, anyone may {slashNoReveal} a committer that did not reveal. A commit
 *   left unrevealed is also slashed automatically the next time its owner commits, requests a withdrawal or
 *   withdraws, so reusing the participant's storage round after round opens no escape.
 * - Result: each bonded aggregator submits one {Result} per round. Identical submissions are counted by their hash
 *   ({resultHashOf}); the submission that reaches `quorum` finalizes the round in the same call: the global model
 *   moves, the slash list applies (NoReveal exactly for committers that did not reveal, one slash per participant
 *   per round: entries already slashed are skipped), the rewards Merkle root is stored and the unused budget
 *   returns to the escrow.
 *   An aggregator whose submission differs from the finalized one loses `dissentPenaltyBps` of its bond
 *   ({penalizeDissent}, permissionless, or lazily at its next submission or unbonding).
 * - Rewards: pulled with {claim} and a Merkle proof; leaves follow OpenZeppelin merkle-tree's StandardMerkleTree for
 *   types ["address", "uint256"]: `keccak256(bytes.concat(keccak256(abi.encode(account, amount))))`. Claims never
 *   pay a round more than its declared `rewardsTotal`, and unclaimed rewards do not expire.
 * - Money flow: slashed stake and aggregator penalties go to the task's reward escrow, which funds future rounds.
 *   A failed round's budget returns to the escrow when the next round opens.
 *
 * Every state change emits an event carrying what an auditor needs; the events alone reconstruct the protocol.
 * Token amounts are held as uint96 (stakes, bonds, rewards) and the stake token must not charge transfer fees.
 */
interface IAnchorCoordinator {
    // ------------------------------------------------------------------ types

    /// @notice Phase of a round, derived from stored deadlines. `None` means the round was never opened.
    enum RoundPhase {
        None,
        Commit,
        Reveal,
        Aggregation,
        Finalized,
        Failed
    }

    /// @notice Why a participant is slashed; each reason has its own rate in the task config. `None` is rejected.
    enum SlashReason {
        None,
        Outlier,
        Invalid,
        Duplicate,
        NoReveal
    }

    /// @notice Names the task config field that failed validation in {InvalidTaskConfig}.
    enum ConfigField {
        StakeToken,
        MinStake,
        CommitWindow,
        RevealWindow,
        AggregationWindow,
        UnbondingDelay,
        MaxParticipants,
        OutlierSlashBps,
        NoRevealSlashBps,
        InvalidSlashBps,
        DuplicateSlashBps,
        DissentPenaltyBps,
        Aggregators,
        Quorum,
        AggregatorBond,
        GenesisModelDigest,
        ModelSpecDigest
    }

    /**
     * @notice A task's configuration, fixed at creation.
     * @param stakeToken ERC-20 used for stakes, aggregator bonds and rewards (no transfer fees)
     * @param minStake free stake (not pending withdrawal) a participant needs to commit, > 0
     * @param rewardPerRound budget reserved from the escrow when a round opens (may be 0)
     * @param aggregatorBond bond each aggregator must hold to submit results, > 0
     * @param commitWindow seconds of the commit phase (1 .. MAX_WINDOW)
     * @param revealWindow seconds of the reveal phase (1 .. MAX_WINDOW)
     * @param aggregationWindow seconds of the aggregation phase (1 .. MAX_WINDOW)
     * @param unbondingDelay seconds between {requestWithdrawal} and {withdraw} (0 .. MAX_UNBONDING_DELAY)
     * @param maxParticipants commitments accepted per round (1 .. MAX_PARTICIPANTS)
     * @param outlierSlashBps stake share (basis points) slashed for {SlashReason.Outlier}
     * @param noRevealSlashBps stake share slashed for {SlashReason.NoReveal}
     * @param invalidSlashBps stake share slashed for {SlashReason.Invalid}
     * @param duplicateSlashBps stake share slashed for {SlashReason.Duplicate}
     * @param dissentPenaltyBps bond share taken from an aggregator whose result differs from the finalized one
     * @param quorum identical results needed to finalize (1 .. aggregators.length)
     * @param genesisModelDigest sha-256 of the initial model file (non-zero)
     * @param modelSpecDigest sha-256 of the model architecture description (non-zero)
     * @param aggregators the aggregator set (1 .. MAX_AGGREGATORS distinct non-zero addresses)
     */
    struct TaskConfig {
        IERC20 stakeToken;
        uint96 minStake;
        uint96 rewardPerRound;
        uint96 aggregatorBond;
        uint32 commitWindow;
        uint32 revealWindow;
        uint32 aggregationWindow;
        uint32 unbondingDelay;
        uint16 maxParticipants;
        uint16 outlierSlashBps;
        uint16 noRevealSlashBps;
        uint16 invalidSlashBps;
        uint16 duplicateSlashBps;
        uint16 dissentPenaltyBps;
        uint8 quorum;
        bytes32 genesisModelDigest;
        bytes32 modelSpecDigest;
        address[] aggregators;
    }

    /// @notice One entry of a result's slash list.
    struct SlashEntry {
        address participant;
        SlashReason reason;
    }

    /**
     * @notice What an aggregator submits for a round; identical results are counted by {resultHashOf}.
     * @param newModelDigest sha-256 of the aggregated model file (the next global model)
     * @param reportDigest sha-256 of the pinned aggregation report (JSON) that gives every verdict its reasons
     * @param rewardsRoot StandardMerkleTree root over ["address", "uint256"] reward leaves (bytes32(0) if no rewards)
     * @param rewardsTotal sum of the reward leaves; at most the round's budget, the rest returns to the escrow
     * @param slashes participants of this round to slash, each with its reason (NoReveal iff it did not reveal)
     */
    struct Result {
        bytes32 newModelDigest;
        bytes32 reportDigest;
        bytes32 rewardsRoot;
        uint256 rewardsTotal;
        SlashEntry[] slashes;
    }

    /// @notice A task's mutable bookkeeping.
    struct TaskInfo {
        address owner;
        uint256 rewardEscrow;
        bytes32 globalModelDigest;
        uint256 currentRound;
    }

    /**
     * @notice A round's deadlines, counters and outcome. Deadlines and counters are kept only for the current
     * round (zero for older ones; the {RoundOpened}, {PhaseClosedEarly}, {Committed} and {Revealed} events keep them).
     */
    struct RoundInfo {
        RoundPhase phase;
        uint256 commitEnd;
        uint256 revealEnd;
        uint256 aggregationEnd;
        uint256 commitCount;
        uint256 revealCount;
        uint256 budget; // reserved, not yet settled (0 once finalized or, for a failed round, released)
        uint256 unclaimedRewards;
        bytes32 resultHash;
        bytes32 rewardsRoot;
        uint256 finalizedAt;
    }

    /// @notice A participant's stake and last commitment in one task.
    struct ParticipantInfo {
        uint256 stake; // total stake, including the part pending withdrawal (all of it is slashable)
        uint256 pendingWithdrawal;
        uint256 unlockAt; // when the pending withdrawal may be withdrawn
        uint256 lastRound; // last round committed to (0 = never)
        bytes32 commitment; // last commitment (replaced by bytes32(lastRound) once revealed)
        bool revealed; // revealed in lastRound
        bool slashed; // slashed in lastRound
    }

    /// @notice An aggregator's bond and last submission in one task.
    struct AggregatorInfo {
        uint256 bond;
        uint256 lastRound; // last round submitted to (0 = never)
        bytes32 lastResultHash;
        bool member;
        bool settled; // the last submission's dissent penalty was applied or found not due
    }

    // ----------------------------------------------------------------- events

    /// @notice A task was created by `owner` with `config`; its global model starts at `config.genesisModelDigest`.
    event TaskCreated(uint256 indexed taskId, address indexed owner, TaskConfig config);

    /// @notice The task's ownership (the right to open rounds) moved from `previousOwner` to `newOwner`.
    event TaskOwnershipTransferred(
        uint256 indexed taskId,
        address indexed previousOwner,
        address indexed newOwner
    );

    /// @notice `funder` added `amount` to the task's reward escrow, which now holds `escrowAfter`.
    event RewardsFunded(uint256 indexed taskId, address indexed funder, uint256 amount, uint256 escrowAfter);

    /// @notice `participant` staked `amount`; its total stake in the task is now `stakeAfter`.
    event Deposited(uint256 indexed taskId, address indexed participant, uint256 amount, uint256 stakeAfter);

    /// @notice `participant` asked to withdraw `amount` more; `pendingAfter` in total may leave at `unlockAt`.
    event WithdrawalRequested(
        uint256 indexed taskId,
        address indexed participant,
        uint256 amount,
        uint256 pendingAfter,
        uint256 unlockAt
    );

    /// @notice `participant` withdrew `amount`; `stakeAfter` remains staked.
    event Withdrawn(uint256 indexed taskId, address indexed participant, uint256 amount, uint256 stakeAfter);

    /// @notice A round opened on model `baseModelDigest` with `budget` reserved from the escrow and these deadlines.
    event RoundOpened(
        uint256 indexed taskId,
        uint256 indexed round,
        bytes32 baseModelDigest,
        uint256 budget,
        uint256 commitEnd,
        uint256 revealEnd,
        uint256 aggregationEnd
    );

    /**
     * @notice `phase` (Commit: all slots taken; Reveal: every committer revealed) closed early at `closedAt`;
     * the later deadlines moved to `revealEnd` and `aggregationEnd`.
     */
    event PhaseClosedEarly(
        uint256 indexed taskId,
        uint256 indexed round,
        RoundPhase phase,
        uint256 closedAt,
        uint256 revealEnd,
        uint256 aggregationEnd
    );

    /// @notice `participant` committed to an update in `round`.
    event Committed(
        uint256 indexed taskId,
        uint256 indexed round,
        address indexed participant,
        bytes32 commitment
    );

    /**
     * @notice `participant` revealed its update: `updateDigest` is the sha-256 of the file, `contentRoot` is
     * bytes32(0) for a one-block raw file or the sha2-256 digest of its UnixFS dag-pb root block.
     */
    event Revealed(
        uint256 indexed taskId,
        uint256 indexed round,
        address indexed participant,
        bytes32 updateDigest,
        uint256 numSamples,
        bytes32 contentRoot
    );

    /// @notice `amount` of `participant`'s stake moved to the task's reward escrow for `reason` in `round`.
    event Slashed(
        uint256 indexed taskId,
        uint256 indexed round,
        address indexed participant,
        SlashReason reason,
        uint256 amount
    );

    /// @notice `aggregator` added `amount` to its bond, which is now `bondAfter`.
    event AggregatorBonded(
        uint256 indexed taskId,
        address indexed aggregator,
        uint256 amount,
        uint256 bondAfter
    );

    /// @notice `aggregator` took back its whole bond `amount`.
    event AggregatorUnbonded(uint256 indexed taskId, address indexed aggregator, uint256 amount);

    /// @notice `aggregator` submitted `result` (hash `resultHash`), which now has `votes` identical submissions.
    event ResultSubmitted(
        uint256 indexed taskId,
        uint256 indexed round,
        address indexed aggregator,
        bytes32 resultHash,
        uint256 votes,
        Result result
    );

    /**
     * @notice The round finalized with result `resultHash`: the global model is now `newModelDigest`, rewards
     * totalling `rewardsTotal` are claimable against `rewardsRoot`, `returnedToEscrow` of the budget went back.
     */
    event RoundFinalized(
        uint256 indexed taskId,
        uint256 indexed round,
        bytes32 resultHash,
        bytes32 newModelDigest,
        bytes32 reportDigest,
        bytes32 rewardsRoot,
        uint256 rewardsTotal,
        uint256 returnedToEscrow
    );

    /// @notice `round` had Failed (no quorum in time); its `budget` went back to the escrow when the next one opened.
    event RoundBudgetReleased(uint256 indexed taskId, uint256 indexed round, uint256 budget);

    /// @notice `aggregator` lost `amount` of its bond (to the escrow) for dissenting from `round`'s final result.
    event AggregatorPenalized(
        uint256 indexed taskId,
        uint256 indexed round,
        address indexed aggregator,
        uint256 amount,
        uint256 bondAfter
    );

    /// @notice `account` claimed its reward `amount` for `round`.
    event RewardClaimed(
        uint256 indexed taskId,
        uint256 indexed round,
        address indexed account,
        uint256 amount
    );

    // ----------------------------------------------------------------- errors

    /// @notice `taskId` was never created (next id is `nextTaskId`).
    error UnknownTask(uint256 taskId, uint256 nextTaskId);

    /// @notice Config `field` is `found`, outside the allowed range [`min`, `max`].
    error InvalidTaskConfig(ConfigField field, uint256 found, uint256 min, uint256 max);

    /// @notice Aggregator at `index` is the zero address or appears twice.
    error InvalidAggregator(uint256 index, address aggregator);

    /// @notice Only the task owner `owner` may do this; `caller` is not it.
    error NotTaskOwner(uint256 taskId, address owner, address caller);

    /// @notice A task owner must be a non-zero address.
    error InvalidTaskOwner(address newOwner);

    /// @notice Only the task owner or one of its aggregators may open rounds; `caller` is neither.
    error NotTaskOperator(uint256 taskId, address caller);

    /// @notice `caller` is not in the task's aggregator set.
    error NotAggregator(uint256 taskId, address caller);

    /// @notice An amount must be non-zero.
    error ZeroAmount();

    /// @notice `found` exceeds what the coordinator can hold for this purpose (`max`).
    error AmountTooLarge(uint256 found, uint256 max);

    /// @notice The token delivered `received` instead of `expected` (transfer fees are not supported).
    error UnsupportedTokenTransfer(address token, uint256 expected, uint256 received);

    /// @notice After the permit attempt, `owner`'s allowance is `allowance`, less than the `needed` deposit.
    error PermitAllowanceTooLow(address token, address owner, uint256 needed, uint256 allowance);

    /**
     * @notice Round `round` is in phase `current`, but the operation needs one of `expectedPhases`
     * (bitmap: bit `1 << uint8(phase)` for each allowed phase, as in OpenZeppelin Governor).
     */
    error UnexpectedRoundPhase(uint256 taskId, uint256 round, RoundPhase current, bytes32 expectedPhases);

    /// @notice The operation targets round `found` but the task's current round is `expected`.
    error UnexpectedRound(uint256 taskId, uint256 expected, uint256 found);

    /// @notice The reward escrow holds `available`, less than the `needed` round budget; call {fund}.
    error InsufficientEscrow(uint256 taskId, uint256 needed, uint256 available);

    /// @notice `account` has `available` free stake (stake minus pending withdrawal) but `needed` is required.
    error InsufficientFreeStake(uint256 taskId, address account, uint256 needed, uint256 available);

    /// @notice `account` has nothing pending withdrawal.
    error NoPendingWithdrawal(uint256 taskId, address account);

    /// @notice The pending withdrawal unlocks at `unlockAt`; it is now `nowTime`.
    error WithdrawalNotUnlocked(uint256 taskId, address account, uint256 unlockAt, uint256 nowTime);

    /// @notice `account`'s stake backs a commitment in `round`, which has not finished (phase `phase`).
    error StakeLocked(uint256 taskId, address account, uint256 round, RoundPhase phase);

    /// @notice The commitment is zero or looks like a revealed marker (its top 224 bits are zero).
    error InvalidCommitment(bytes32 commitment);

    /// @notice `account` already committed in `round`.
    error AlreadyCommitted(uint256 taskId, uint256 round, address account);

    /// @notice `account` already revealed in `round`.
    error AlreadyRevealed(uint256 taskId, uint256 round, address account);

    /// @notice The reveal hashes to `computed`, but `account`'s stored commitment is `stored`.
    error CommitmentMismatch(
        uint256 taskId,
        uint256 round,
        address account,
        bytes32 stored,
        bytes32 computed
    );

    /// @notice `account` has no unrevealed, unslashed commitment in `round` (its last round is `lastRound`).
    error NoUnrevealedCommitment(uint256 taskId, uint256 round, address account, uint256 lastRound);

    /// @notice `aggregator` holds `bond`, less than the task's `required` bond; call {bondAggregator}.
    error AggregatorBondTooLow(uint256 taskId, address aggregator, uint256 required, uint256 bond);

    /// @notice `aggregator` already holds the full `bond`.
    error AggregatorAlreadyBonded(uint256 taskId, address aggregator, uint256 bond);

    /// @notice `aggregator` has no bond to take back.
    error AggregatorNotBonded(uint256 taskId, address aggregator);

    /// @notice `aggregator` already submitted a result for `round`.
    error AlreadySubmitted(uint256 taskId, uint256 round, address aggregator);

    /// @notice The result's `rewardsTotal` exceeds the round's `budget`.
    error RewardsExceedBudget(uint256 taskId, uint256 round, uint256 rewardsTotal, uint256 budget);

    /// @notice The result promises `rewardsTotal` in rewards but gives no Merkle root to claim them against.
    error MissingRewardsRoot(uint256 rewardsTotal);

    /// @notice The slash list has `length` entries; a round has only `commitCount` committers.
    error SlashListTooLong(uint256 length, uint256 commitCount);

    /// @notice Slash entry `index` names `participant`, which did not commit in `round`.
    error SlashTargetNotCommitted(uint256 index, address participant, uint256 round);

    /// @notice Slash entry `index` gives `reason`, which is `None` or contradicts whether the participant `revealed`.
    error InvalidSlashReason(uint256 index, address participant, SlashReason reason, bool revealed);

    /// @notice `aggregator` owes no dissent penalty: its last submission (round `round`) is settled or agreed.
    error NoDissent(uint256 taskId, address aggregator, uint256 round);

    /// @notice `aggregator`'s last submission (round `round`, phase `phase`) is not settled yet; its bond is locked.
    error BondLocked(uint256 taskId, address aggregator, uint256 round, RoundPhase phase);

    /// @notice `account` already claimed its reward for `round`.
    error AlreadyClaimed(uint256 taskId, uint256 round, address account);

    /// @notice The proof does not show (`account`, `amount`) under `round`'s rewards root.
    error InvalidRewardProof(uint256 taskId, uint256 round, address account, uint256 amount);

    /// @notice Paying `amount` would exceed the round's remaining `unclaimed` rewards.
    error RewardsExhausted(uint256 taskId, uint256 round, uint256 amount, uint256 unclaimed);

    // ------------------------------------------------------------- tasks

    /**
     * @notice Creates a task owned by the caller; ids start at 1 and increase.
     * @param config the task config; every field is validated ({InvalidTaskConfig}, {InvalidAggregator})
     * @return taskId the new task's id
     */
    function createTask(TaskConfig calldata config) external returns (uint256 taskId);

    /**
     * @notice Hands the task to `newOwner` (task owner only; one step, so double-check the address).
     * @param taskId the task
     * @param newOwner the next owner, non-zero
     */
    function transferTaskOwnership(uint256 taskId, address newOwner) external;

    /**
     * @notice Adds `amount` of the stake token to the task's reward escrow (anyone may fund; the caller pays).
     * @param taskId the task
     * @param amount tokens to pull from the caller (needs an allowance)
     */
    function fund(uint256 taskId, uint256 amount) external;

    // ------------------------------------------------------------- stake

    /**
     * @notice Stakes `amount` of the task's stake token for the caller (needs an allowance).
     * @param taskId the task
     * @param amount tokens to pull from the caller, > 0
     */
    function deposit(uint256 taskId, uint256 amount) external;

    /**
     * @notice Like {deposit}, with an EIP-2612 permit in the same transaction. A permit that fails (for example
     * because someone front-ran it) is tolerated as long as the allowance is already sufficient.
     * @param taskId the task
     * @param amount tokens to pull from the caller, > 0
     * @param deadline permit deadline
     * @param v permit signature v
     * @param r permit signature r
     * @param s permit signature s
     */
    function depositWithPermit(
        uint256 taskId,
        uint256 amount,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external;

    /**
     * @notice Marks `amount` more of the caller's free stake for withdrawal; the whole pending amount unlocks
     * `unbondingDelay` seconds from now. Pending stake stays slashable until it leaves.
     * @param taskId the task
     * @param amount tokens to add to the pending withdrawal, > 0 and <= free stake
     */
    function requestWithdrawal(uint256 taskId, uint256 amount) external;

    /**
     * @notice Pays out the caller's pending withdrawal once unlocked and once no unfinished round holds its stake.
     * An overdue no-reveal slash is applied first.
     * @param taskId the task
     * @return amount tokens paid out
     */
    function withdraw(uint256 taskId) external returns (uint256 amount);

    // ------------------------------------------------------------- rounds

    /**
     * @notice Opens the next round (task owner or an aggregator) once the current one is Finalized or Failed,
     * reserving `rewardPerRound` from the escrow (and releasing a failed round's budget first).
     * @param taskId the task
     * @return round the new round number (the first is 1)
     */
    function openRound(uint256 taskId) external returns (uint256 round);

    /**
     * @notice Commits the caller to an update in the current round (Commit phase). The last free slot closes the
     * commit phase at once. A previous round's unrevealed commitment is slashed first.
     * @param taskId the task
     * @param round the current round (guards against a commit landing in an unexpected round)
     * @param commitment see {commitmentOf}
     */
    function commit(uint256 taskId, uint256 round, bytes32 commitment) external;

    /**
     * @notice Reveals the caller's committed update (Reveal phase); the last reveal closes the reveal phase at once.
     * @param taskId the task
     * @param round the current round
     * @param updateDigest sha-256 of the whole update file
     * @param numSamples local training samples the update claims
     * @param salt the commitment's salt
     * @param contentRoot bytes32(0) for a one-block raw file, else the sha2-256 digest of its UnixFS root block
     */
    function reveal(
        uint256 taskId,
        uint256 round,
        bytes32 updateDigest,
        uint64 numSamples,
        bytes32 salt,
        bytes32 contentRoot
    ) external;

    /**
     * @notice Slashes (at `noRevealSlashBps`) a participant that committed in `round` but did not reveal, once the
     * reveal phase is over. Anyone may call it; the slashed stake goes to the reward escrow.
     * @param taskId the task
     * @param round the participant's last committed round
     * @param participant the committer
     */
    function slashNoReveal(uint256 taskId, uint256 round, address participant) external;

    // ------------------------------------------------------------- aggregators

    /**
     * @notice Brings the caller's bond up to the task's `aggregatorBond` (pulls the difference). Caller must be in
     * the aggregator set.
     * @param taskId the task
     */
    function bondAggregator(uint256 taskId) external;

    /**
     * @notice Returns the caller's whole bond once its last submission's round has finished (after any dissent
     * penalty). The caller may bond again later.
     * @param taskId the task
     * @return amount tokens returned
     */
    function unbondAggregator(uint256 taskId) external returns (uint256 amount);

    /**
     * @notice Submits the caller's result for the current round (Aggregation phase, bonded aggregator, once per
     * round). The submission that brings identical results to `quorum` finalizes the round in this call.
     * @param taskId the task
     * @param round the current round
     * @param result the result (see {Result})
     */
    function submitResult(uint256 taskId, uint256 round, Result calldata result) external;

    /**
     * @notice Takes `dissentPenaltyBps` of `aggregator`'s bond into the escrow when its last submission differs from
     * its round's finalized result. Permissionless; at most once per submission.
     * @param taskId the task
     * @param aggregator the dissenting aggregator
     */
    function penalizeDissent(uint256 taskId, address aggregator) external;

    // ------------------------------------------------------------- rewards

    /**
     * @notice Pays the caller its reward for a finalized round against the round's Merkle root. Once per round.
     * Claimed flags are bits of one word per 256 rounds; a participant's first deposit allocates its first word, so
     * its claims rewrite a non-zero slot (an account that never staked pays for the word on its first claim).
     * @param taskId the task
     * @param round a finalized round
     * @param amount the caller's leaf amount
     * @param proof StandardMerkleTree proof of (caller, amount)
     */
    function claim(uint256 taskId, uint256 round, uint256 amount, bytes32[] calldata proof) external;

    // ------------------------------------------------------------- views

    /// @notice The id the next {createTask} will return (tasks are 1 .. nextTaskId - 1).
    function nextTaskId() external view returns (uint256);

    /// @notice The task's config as created.
    function taskConfig(uint256 taskId) external view returns (TaskConfig memory);

    /// @notice Owner, reward escrow, current global model digest and current round of a task.
    function taskInfo(uint256 taskId) external view returns (TaskInfo memory);

    /// @notice The task's current global model digest (genesis until a round finalizes).
    function globalModel(uint256 taskId) external view returns (bytes32);

    /// @notice The task's current round (0 before the first {openRound}).
    function currentRound(uint256 taskId) external view returns (uint256);

    /// @notice The phase of `round`, derived from its stored deadlines and outcome at this block's timestamp.
    function roundPhase(uint256 taskId, uint256 round) external view returns (RoundPhase);

    /// @notice Deadlines, counters and outcome of `round` (deadlines and counters only for the current round).
    function roundInfo(uint256 taskId, uint256 round) external view returns (RoundInfo memory);

    /// @notice `account`'s stake and last commitment in the task.
    function participantInfo(uint256 taskId, address account) external view returns (ParticipantInfo memory);

    /// @notice `account`'s aggregator membership, bond and last submission in the task.
    function aggregatorInfo(uint256 taskId, address account) external view returns (AggregatorInfo memory);

    /// @notice Identical submissions of `resultHash` counted so far in `round`.
    function resultVotes(uint256 taskId, uint256 round, bytes32 resultHash) external view returns (uint256);

    /// @notice Whether `account` claimed its reward for `round` (round 0 never exists; it reads true once staked).
    function hasClaimed(uint256 taskId, uint256 round, address account) external view returns (bool);

    /**
     * @notice The commitment this coordinator expects:
     * keccak256(abi.encode(block.chainid, address(this), taskId, round, participant, updateDigest, salt)).
     */
    function commitmentOf(
        uint256 taskId,
        uint256 round,
        address participant,
        bytes32 updateDigest,
        bytes32 salt
    ) external view returns (bytes32);

    /// @notice The hash identical submissions are counted by: keccak256(abi.encode(result)).
    function resultHashOf(Result calldata result) external pure returns (bytes32);
}
