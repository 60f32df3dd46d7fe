// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IAnchorCoordinator} from "./IAnchorCoordinator.sol";

// Phases are half-open intervals [start, end): a non-strict comparison states a boundary most plainly.
// solhint-disable gas-strict-inequalities

/**
 * @title AnchorCoordinator
 * @notice Stake-backed commit-reveal rounds for federated learning, many tasks per contract.
 * The protocol (phases, commitment format, slashing, rewards, money flow) is documented in {IAnchorCoordinator}.
 *
 * Storage is laid out for the hot path: a task's current round lives in one slot reused round after round
 * (deadlines, counters), a participant's stake and last round share one slot, its commitment sits in a second
 * slot that is reused (and replaced by a "revealed" marker on reveal), and reveal data lives only in events.
 * Nothing loops over participants; the only loops are over the aggregator set (<= 16) at task creation and over
 * a result's slash list.
 */
contract AnchorCoordinator is IAnchorCoordinator, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @notice Basis points in 100%.
    uint256 public constant BPS = 10_000;
    /// @notice Longest commit, reveal or aggregation window.
    uint256 public constant MAX_WINDOW = 30 days;
    /// @notice Longest unbonding delay.
    uint256 public constant MAX_UNBONDING_DELAY = 365 days;
    /// @notice Largest `maxParticipants`.
    uint256 public constant MAX_PARTICIPANTS = 10_000;
    /// @notice Largest aggregator set.
    uint256 public constant MAX_AGGREGATORS = 16;

    /// @dev The current round of a task, in one slot so commit and reveal read and write it once.
    struct TaskState {
        uint32 round;
        uint40 commitEnd;
        uint40 revealEnd;
        uint40 aggregationEnd;
        uint16 commitCount;
        uint16 revealCount;
        uint16 maxParticipants;
        bool finalized;
    }

    /// @dev A participant's stake in a task and its last commitment's status, in one reused slot.
    struct Stake {
        uint96 amount; // total, including `pending`
        uint96 pending;
        uint32 lastRound;
        bool slashed; // slashed in lastRound (at most one slash per round)
        bool eligible; // amount - pending >= the task's minStake, kept current so commit need not read the config
    }

    /// @dev What outlives a round: its budget, result and reward bookkeeping.
    struct RoundRecord {
        bytes32 rewardsRoot;
        bytes32 resultHash;
        uint96 budget;
        uint96 unclaimed;
        uint40 finalizedAt;
    }

    /// @dev An aggregator's standing in a task; its last result hash is kept beside it.
    struct Aggregator {
        uint96 bond;
        uint32 lastRound;
        bool member;
        bool settled;
    }

    /// @dev A task's owner and money that is not stake.
    struct TaskBook {
        address owner;
        uint256 escrow;
        bytes32 globalModel;
    }

    uint256 private _nextTaskId = 1;

    mapping(uint256 taskId => TaskConfig) private _configs;
    mapping(uint256 taskId => TaskBook) private _books;
    mapping(uint256 taskId => TaskState) private _states;
    mapping(uint256 taskId => mapping(uint256 round => RoundRecord)) private _rounds;
    mapping(uint256 taskId => mapping(address account => Stake)) private _stakes;
    mapping(uint256 taskId => mapping(address account => bytes32)) private _commitments;
    mapping(uint256 taskId => mapping(address account => uint256)) private _unlockAt;
    mapping(uint256 taskId => mapping(address account => Aggregator)) private _aggregators;
    mapping(uint256 taskId => mapping(address account => bytes32)) private _lastResults;
    mapping(uint256 taskId => mapping(uint256 round => mapping(bytes32 resultHash => uint256)))
        private _votes;
    // One word covers 256 consecutive rounds of an account, so a regular claimer rewrites a warm, non-zero word.
    mapping(uint256 taskId => mapping(address account => mapping(uint256 word => uint256)))
        private _claimedBits;

    // ================================================================= tasks

    /// @inheritdoc IAnchorCoordinator
    function createTask(TaskConfig calldata config) external returns (uint256 taskId) {
        _validateConfig(config);
        taskId = _nextTaskId;
        ++_nextTaskId;
        _configs[taskId] = config;
        for (uint256 i = 0; i < config.aggregators.length; ++i) {
            _aggregators[taskId][config.aggregators[i]].member = true;
        }
        _books[taskId].owner = msg.sender;
        _books[taskId].globalModel = config.genesisModelDigest;
        emit TaskCreated(taskId, msg.sender, config);
    }

    /// @inheritdoc IAnchorCoordinator
    function transferTaskOwnership(uint256 taskId, address newOwner) external {
        address owner = _requireTask(taskId);
        if (msg.sender != owner) revert NotTaskOwner(taskId, owner, msg.sender);
        if (newOwner == address(0)) revert InvalidTaskOwner(newOwner);
        _books[taskId].owner = newOwner;
        emit TaskOwnershipTransferred(taskId, owner, newOwner);
    }

    /// @inheritdoc IAnchorCoordinator
    function fund(uint256 taskId, uint256 amount) external nonReentrant {
        _requireTask(taskId);
        if (amount == 0) revert ZeroAmount();
        uint256 escrowAfter = _books[taskId].escrow + amount;
        _books[taskId].escrow = escrowAfter;
        _pull(_configs[taskId].stakeToken, amount);
        emit RewardsFunded(taskId, msg.sender, amount, escrowAfter);
    }

    // ================================================================= stake

    /// @inheritdoc IAnchorCoordinator
    function deposit(uint256 taskId, uint256 amount) external nonReentrant {
        _requireTask(taskId);
        _deposit(taskId, amount);
    }

    /// @inheritdoc IAnchorCoordinator
    function depositWithPermit(
        uint256 taskId,
        uint256 amount,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external nonReentrant {
        _requireTask(taskId);
        IERC20 token = _configs[taskId].stakeToken;
        // A permit can be front-run (its signature is public once in the mempool), which makes ours revert although
        // the allowance is in place; OpenZeppelin's advice is to ignore the failure and check the allowance.
        try
            IERC20Permit(address(token)).permit(msg.sender, address(this), amount, deadline, v, r, s)
        {} catch {}
        uint256 allowance = token.allowance(msg.sender, address(this));
        if (allowance < amount) revert PermitAllowanceTooLow(address(token), msg.sender, amount, allowance);
        _deposit(taskId, amount);
    }

    /// @inheritdoc IAnchorCoordinator
    function requestWithdrawal(uint256 taskId, uint256 amount) external {
        _requireTask(taskId);
        if (amount == 0) revert ZeroAmount();
        Stake memory st = _settleNoReveal(taskId, msg.sender);
        uint256 free = st.amount - st.pending;
        if (amount > free) revert InsufficientFreeStake(taskId, msg.sender, amount, free);
        st.pending += uint96(amount);
        _storeStake(taskId, msg.sender, st);
        uint256 unlockAt = block.timestamp + _configs[taskId].unbondingDelay;
        _unlockAt[taskId][msg.sender] = unlockAt;
        emit WithdrawalRequested(taskId, msg.sender, amount, st.pending, unlockAt);
    }

    /// @inheritdoc IAnchorCoordinator
    function withdraw(uint256 taskId) external nonReentrant returns (uint256 amount) {
        _requireTask(taskId);
        Stake memory st = _settleNoReveal(taskId, msg.sender);
        if (st.pending == 0) revert NoPendingWithdrawal(taskId, msg.sender);
        uint256 unlockAt = _unlockAt[taskId][msg.sender];
        if (block.timestamp < unlockAt)
            revert WithdrawalNotUnlocked(taskId, msg.sender, unlockAt, block.timestamp);
        if (st.lastRound != 0) {
            RoundPhase phase = _roundPhase(taskId, st.lastRound);
            // Until its round is Finalized or Failed, the stake may still be slashed for what it backed.
            if (!_isFinished(phase)) revert StakeLocked(taskId, msg.sender, st.lastRound, phase);
        }
        amount = st.pending;
        st.amount -= st.pending;
        st.pending = 0;
        _storeStake(taskId, msg.sender, st);
        _configs[taskId].stakeToken.safeTransfer(msg.sender, amount);
        emit Withdrawn(taskId, msg.sender, amount, st.amount);
    }

    // ================================================================= rounds

    /// @inheritdoc IAnchorCoordinator
    function openRound(uint256 taskId) external returns (uint256 round) {
        address owner = _requireTask(taskId);
        if (msg.sender != owner && !_aggregators[taskId][msg.sender].member) {
            revert NotTaskOperator(taskId, msg.sender);
        }
        TaskState memory s = _states[taskId];
        TaskBook storage book = _books[taskId];
        if (s.round != 0) {
            RoundPhase phase = _currentPhase(s);
            if (!_isFinished(phase)) {
                revert UnexpectedRoundPhase(taskId, s.round, phase, _finishedPhases());
            }
            if (phase == RoundPhase.Failed) _releaseBudget(taskId, s.round, book);
        }
        TaskConfig storage cfg = _configs[taskId];
        uint96 budget = cfg.rewardPerRound;
        if (book.escrow < budget) revert InsufficientEscrow(taskId, budget, book.escrow);
        book.escrow -= budget;

        round = uint256(s.round) + 1;
        uint256 commitEnd = block.timestamp + cfg.commitWindow;
        uint256 revealEnd = commitEnd + cfg.revealWindow;
        uint256 aggregationEnd = revealEnd + cfg.aggregationWindow;
        _states[taskId] = TaskState({
            round: uint32(round),
            commitEnd: uint40(commitEnd),
            revealEnd: uint40(revealEnd),
            aggregationEnd: uint40(aggregationEnd),
            commitCount: 0,
            revealCount: 0,
            maxParticipants: cfg.maxParticipants,
            finalized: false
        });
        _rounds[taskId][round].budget = budget;
        emit RoundOpened(taskId, round, book.globalModel, budget, commitEnd, revealEnd, aggregationEnd);
    }

    /// @inheritdoc IAnchorCoordinator
    function commit(uint256 taskId, uint256 round, bytes32 commitment) external {
        // A value this small could be mistaken for a revealed marker (bytes32(round)).
        if (uint256(commitment) <= type(uint32).max) revert InvalidCommitment(commitment);
        TaskState memory s = _currentRound(taskId, round);
        if (block.timestamp >= s.commitEnd) {
            revert UnexpectedRoundPhase(taskId, round, _currentPhase(s), _phaseBit(RoundPhase.Commit));
        }
        Stake memory st = _stakes[taskId][msg.sender];
        if (st.lastRound == round) revert AlreadyCommitted(taskId, round, msg.sender);
        // The slot is about to be reused: an earlier round's unrevealed commitment is slashed now or never.
        if (_owesNoReveal(taskId, msg.sender, st)) {
            st = _slash(taskId, st.lastRound, msg.sender, st, SlashReason.NoReveal);
        }
        if (!st.eligible) {
            revert InsufficientFreeStake(
                taskId,
                msg.sender,
                _configs[taskId].minStake,
                st.amount - st.pending
            );
        }

        // Field-wise writes: each packed slot is written once on the common path.
        Stake storage stored = _stakes[taskId][msg.sender];
        stored.lastRound = uint32(round);
        if (st.slashed) stored.slashed = false;
        _commitments[taskId][msg.sender] = commitment;
        uint16 count = s.commitCount + 1;
        if (count == s.maxParticipants) _closeCommitPhase(taskId, s.round, count);
        else _states[taskId].commitCount = count;
        emit Committed(taskId, round, msg.sender, commitment);
    }

    /// @inheritdoc IAnchorCoordinator
    function reveal(
        uint256 taskId,
        uint256 round,
        bytes32 updateDigest,
        uint64 numSamples,
        bytes32 salt,
        bytes32 contentRoot
    ) external {
        TaskState memory s = _currentRound(taskId, round);
        if (block.timestamp < s.commitEnd || block.timestamp >= s.revealEnd) {
            revert UnexpectedRoundPhase(taskId, round, _currentPhase(s), _phaseBit(RoundPhase.Reveal));
        }
        bytes32 stored = _commitments[taskId][msg.sender];
        bytes32 marker = _revealedMarker(round);
        if (stored == marker) revert AlreadyRevealed(taskId, round, msg.sender);
        bytes32 computed = _commitmentOf(taskId, round, msg.sender, updateDigest, salt);
        // The commitment binds chain, contract, task, round and sender: a match proves a commit in this round.
        if (stored != computed) revert CommitmentMismatch(taskId, round, msg.sender, stored, computed);

        _commitments[taskId][msg.sender] = marker;
        uint16 count = s.revealCount + 1;
        if (count == s.commitCount) _closeRevealPhase(taskId, s.round, count);
        else _states[taskId].revealCount = count;
        emit Revealed(taskId, round, msg.sender, updateDigest, numSamples, contentRoot);
    }

    /// @inheritdoc IAnchorCoordinator
    function slashNoReveal(uint256 taskId, uint256 round, address participant) external {
        _requireTask(taskId);
        Stake memory st = _stakes[taskId][participant];
        if (round == 0 || st.lastRound != round || st.slashed || _isRevealed(taskId, participant, round)) {
            revert NoUnrevealedCommitment(taskId, round, participant, st.lastRound);
        }
        RoundPhase phase = _roundPhase(taskId, round);
        if (phase == RoundPhase.Commit || phase == RoundPhase.Reveal) {
            revert UnexpectedRoundPhase(taskId, round, phase, _revealOverPhases());
        }
        _slash(taskId, round, participant, st, SlashReason.NoReveal);
    }

    // ================================================================= aggregators

    /// @inheritdoc IAnchorCoordinator
    function bondAggregator(uint256 taskId) external nonReentrant {
        Aggregator storage agg = _requireAggregator(taskId);
        if (agg.lastRound != 0 && _isFinished(_roundPhase(taskId, agg.lastRound))) {
            _settleDissent(taskId, msg.sender, agg);
        }
        uint96 required = _configs[taskId].aggregatorBond;
        if (agg.bond >= required) revert AggregatorAlreadyBonded(taskId, msg.sender, agg.bond);
        uint256 amount = required - agg.bond;
        agg.bond = required;
        _pull(_configs[taskId].stakeToken, amount);
        emit AggregatorBonded(taskId, msg.sender, amount, required);
    }

    /// @inheritdoc IAnchorCoordinator
    function unbondAggregator(uint256 taskId) external nonReentrant returns (uint256 amount) {
        Aggregator storage agg = _requireAggregator(taskId);
        if (agg.bond == 0) revert AggregatorNotBonded(taskId, msg.sender);
        if (agg.lastRound != 0) {
            RoundPhase phase = _roundPhase(taskId, agg.lastRound);
            // Leaving before the result is known would dodge the dissent penalty.
            if (!_isFinished(phase)) revert BondLocked(taskId, msg.sender, agg.lastRound, phase);
            _settleDissent(taskId, msg.sender, agg);
        }
        amount = agg.bond;
        agg.bond = 0;
        _configs[taskId].stakeToken.safeTransfer(msg.sender, amount);
        emit AggregatorUnbonded(taskId, msg.sender, amount);
    }

    /// @inheritdoc IAnchorCoordinator
    function submitResult(uint256 taskId, uint256 round, Result calldata result) external {
        Aggregator storage agg = _requireAggregator(taskId);
        TaskState memory s = _currentRound(taskId, round);
        RoundPhase phase = _currentPhase(s);
        if (phase != RoundPhase.Aggregation) {
            revert UnexpectedRoundPhase(taskId, round, phase, _phaseBit(RoundPhase.Aggregation));
        }
        if (agg.lastRound == round) revert AlreadySubmitted(taskId, round, msg.sender);
        // Its previous round is over (rounds are sequential), so a pending dissent penalty can be settled now.
        if (agg.lastRound != 0) _settleDissent(taskId, msg.sender, agg);
        TaskConfig storage cfg = _configs[taskId];
        if (agg.bond < cfg.aggregatorBond) {
            revert AggregatorBondTooLow(taskId, msg.sender, cfg.aggregatorBond, agg.bond);
        }
        RoundRecord storage rec = _rounds[taskId][round];
        if (result.rewardsTotal > rec.budget) {
            revert RewardsExceedBudget(taskId, round, result.rewardsTotal, rec.budget);
        }
        // Rewards without a root could never be claimed: they would be locked for good.
        if (result.rewardsTotal != 0 && result.rewardsRoot == bytes32(0)) {
            revert MissingRewardsRoot(result.rewardsTotal);
        }
        _validateSlashes(taskId, round, s.commitCount, result.slashes);

        bytes32 resultHash = keccak256(abi.encode(result));
        agg.lastRound = uint32(round);
        agg.settled = false;
        _lastResults[taskId][msg.sender] = resultHash;
        uint256 votes = ++_votes[taskId][round][resultHash];
        emit ResultSubmitted(taskId, round, msg.sender, resultHash, votes, result);
        if (votes == cfg.quorum) _finalize(taskId, round, rec, result, resultHash);
    }

    /// @inheritdoc IAnchorCoordinator
    function penalizeDissent(uint256 taskId, address aggregator) external {
        _requireTask(taskId);
        Aggregator storage agg = _aggregators[taskId][aggregator];
        uint256 round = agg.lastRound;
        if (round == 0 || agg.settled) revert NoDissent(taskId, aggregator, round);
        RoundPhase phase = _roundPhase(taskId, round);
        if (phase == RoundPhase.Aggregation) {
            revert UnexpectedRoundPhase(taskId, round, phase, _phaseBit(RoundPhase.Finalized));
        }
        if (!_settleDissent(taskId, aggregator, agg)) revert NoDissent(taskId, aggregator, round);
    }

    // ================================================================= rewards

    /// @inheritdoc IAnchorCoordinator
    function claim(
        uint256 taskId,
        uint256 round,
        uint256 amount,
        bytes32[] calldata proof
    ) external nonReentrant {
        RoundRecord storage rec = _rounds[taskId][round];
        if (rec.finalizedAt == 0) {
            revert UnexpectedRoundPhase(
                taskId,
                round,
                _roundPhase(taskId, round),
                _phaseBit(RoundPhase.Finalized)
            );
        }
        uint256 word = round >> 8;
        uint256 bit = 1 << (round & 0xff);
        uint256 bits = _claimedBits[taskId][msg.sender][word];
        if (bits & bit != 0) revert AlreadyClaimed(taskId, round, msg.sender);
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(msg.sender, amount))));
        if (!MerkleProof.verifyCalldata(proof, rec.rewardsRoot, leaf)) {
            revert InvalidRewardProof(taskId, round, msg.sender, amount);
        }
        // Even a tree that promises more than rewardsTotal can never pay out more than the round set aside.
        uint256 unclaimed = rec.unclaimed;
        if (amount > unclaimed) revert RewardsExhausted(taskId, round, amount, unclaimed);
        _claimedBits[taskId][msg.sender][word] = bits | bit;
        rec.unclaimed = uint96(unclaimed - amount);
        _configs[taskId].stakeToken.safeTransfer(msg.sender, amount);
        emit RewardClaimed(taskId, round, msg.sender, amount);
    }

    // ================================================================= views

    /// @inheritdoc IAnchorCoordinator
    function nextTaskId() external view returns (uint256) {
        return _nextTaskId;
    }

    /// @inheritdoc IAnchorCoordinator
    function taskConfig(uint256 taskId) external view returns (TaskConfig memory) {
        _requireTask(taskId);
        return _configs[taskId];
    }

    /// @inheritdoc IAnchorCoordinator
    function taskInfo(uint256 taskId) external view returns (TaskInfo memory) {
        _requireTask(taskId);
        TaskBook storage book = _books[taskId];
        return TaskInfo(book.owner, book.escrow, book.globalModel, _states[taskId].round);
    }

    /// @inheritdoc IAnchorCoordinator
    function globalModel(uint256 taskId) external view returns (bytes32) {
        _requireTask(taskId);
        return _books[taskId].globalModel;
    }

    /// @inheritdoc IAnchorCoordinator
    function currentRound(uint256 taskId) external view returns (uint256) {
        _requireTask(taskId);
        return _states[taskId].round;
    }

    /// @inheritdoc IAnchorCoordinator
    function roundPhase(uint256 taskId, uint256 round) external view returns (RoundPhase) {
        _requireTask(taskId);
        return _roundPhase(taskId, round);
    }

    /// @inheritdoc IAnchorCoordinator
    function roundInfo(uint256 taskId, uint256 round) external view returns (RoundInfo memory info) {
        _requireTask(taskId);
        RoundRecord storage rec = _rounds[taskId][round];
        info.phase = _roundPhase(taskId, round);
        info.budget = rec.budget;
        info.unclaimedRewards = rec.unclaimed;
        info.resultHash = rec.resultHash;
        info.rewardsRoot = rec.rewardsRoot;
        info.finalizedAt = rec.finalizedAt;
        TaskState memory s = _states[taskId];
        if (round == s.round && round != 0) {
            info.commitEnd = s.commitEnd;
            info.revealEnd = s.revealEnd;
            info.aggregationEnd = s.aggregationEnd;
            info.commitCount = s.commitCount;
            info.revealCount = s.revealCount;
        }
    }

    /// @inheritdoc IAnchorCoordinator
    function participantInfo(uint256 taskId, address account) external view returns (ParticipantInfo memory) {
        _requireTask(taskId);
        Stake memory st = _stakes[taskId][account];
        return
            ParticipantInfo({
                stake: st.amount,
                pendingWithdrawal: st.pending,
                unlockAt: _unlockAt[taskId][account],
                lastRound: st.lastRound,
                commitment: _commitments[taskId][account],
                revealed: st.lastRound != 0 && _isRevealed(taskId, account, st.lastRound),
                slashed: st.slashed
            });
    }

    /// @inheritdoc IAnchorCoordinator
    function aggregatorInfo(uint256 taskId, address account) external view returns (AggregatorInfo memory) {
        _requireTask(taskId);
        Aggregator memory agg = _aggregators[taskId][account];
        return
            AggregatorInfo({
                bond: agg.bond,
                lastRound: agg.lastRound,
                lastResultHash: _lastResults[taskId][account],
                member: agg.member,
                settled: agg.settled
            });
    }

    /// @inheritdoc IAnchorCoordinator
    function resultVotes(uint256 taskId, uint256 round, bytes32 resultHash) external view returns (uint256) {
        return _votes[taskId][round][resultHash];
    }

    /// @inheritdoc IAnchorCoordinator
    function hasClaimed(uint256 taskId, uint256 round, address account) external view returns (bool) {
        return _claimedBits[taskId][account][round >> 8] & (1 << (round & 0xff)) != 0;
    }

    /// @inheritdoc IAnchorCoordinator
    function commitmentOf(
        uint256 taskId,
        uint256 round,
        address participant,
        bytes32 updateDigest,
        bytes32 salt
    ) external view returns (bytes32) {
        return _commitmentOf(taskId, round, participant, updateDigest, salt);
    }

    /// @inheritdoc IAnchorCoordinator
    function resultHashOf(Result calldata result) external pure returns (bytes32) {
        return keccak256(abi.encode(result));
    }

    // ================================================================= internal: tasks and money

    function _validateConfig(TaskConfig calldata c) private view {
        if (address(c.stakeToken).code.length == 0) {
            revert InvalidTaskConfig(
                ConfigField.StakeToken,
                uint160(address(c.stakeToken)),
                1,
                type(uint160).max
            );
        }
        _checkRange(ConfigField.MinStake, c.minStake, 1, type(uint96).max);
        _checkRange(ConfigField.AggregatorBond, c.aggregatorBond, 1, type(uint96).max);
        _checkRange(ConfigField.CommitWindow, c.commitWindow, 1, MAX_WINDOW);
        _checkRange(ConfigField.RevealWindow, c.revealWindow, 1, MAX_WINDOW);
        _checkRange(ConfigField.AggregationWindow, c.aggregationWindow, 1, MAX_WINDOW);
        _checkRange(ConfigField.UnbondingDelay, c.unbondingDelay, 0, MAX_UNBONDING_DELAY);
        _checkRange(ConfigField.MaxParticipants, c.maxParticipants, 1, MAX_PARTICIPANTS);
        _checkRange(ConfigField.OutlierSlashBps, c.outlierSlashBps, 0, BPS);
        _checkRange(ConfigField.NoRevealSlashBps, c.noRevealSlashBps, 0, BPS);
        _checkRange(ConfigField.InvalidSlashBps, c.invalidSlashBps, 0, BPS);
        _checkRange(ConfigField.DuplicateSlashBps, c.duplicateSlashBps, 0, BPS);
        _checkRange(ConfigField.DissentPenaltyBps, c.dissentPenaltyBps, 0, BPS);
        _checkRange(ConfigField.Aggregators, c.aggregators.length, 1, MAX_AGGREGATORS);
        _checkRange(ConfigField.Quorum, c.quorum, 1, c.aggregators.length);
        _checkRange(ConfigField.GenesisModelDigest, uint256(c.genesisModelDigest), 1, type(uint256).max);
        _checkRange(ConfigField.ModelSpecDigest, uint256(c.modelSpecDigest), 1, type(uint256).max);
        for (uint256 i = 0; i < c.aggregators.length; ++i) {
            address a = c.aggregators[i];
            if (a == address(0)) revert InvalidAggregator(i, a);
            for (uint256 j = 0; j < i; ++j) {
                if (c.aggregators[j] == a) revert InvalidAggregator(i, a);
            }
        }
    }

    function _checkRange(ConfigField field, uint256 found, uint256 min, uint256 max) private pure {
        if (found < min || found > max) revert InvalidTaskConfig(field, found, min, max);
    }

    /// @dev Returns the task owner; reverts for a task that was never created.
    function _requireTask(uint256 taskId) private view returns (address owner) {
        owner = _books[taskId].owner;
        if (owner == address(0)) revert UnknownTask(taskId, _nextTaskId);
    }

    function _requireAggregator(uint256 taskId) private view returns (Aggregator storage agg) {
        _requireTask(taskId);
        agg = _aggregators[taskId][msg.sender];
        if (!agg.member) revert NotAggregator(taskId, msg.sender);
    }

    function _deposit(uint256 taskId, uint256 amount) private {
        if (amount == 0) revert ZeroAmount();
        Stake memory st = _stakes[taskId][msg.sender];
        uint256 room = type(uint96).max - st.amount;
        if (amount > room) revert AmountTooLarge(amount, room);
        st.amount += uint96(amount);
        _storeStake(taskId, msg.sender, st);
        // Allocate the claim bitmap's first word now (bit 0 stands for round 0, which never exists), so that
        // claiming rewards for rounds 1-255 rewrites a non-zero word instead of paying for a fresh slot.
        mapping(uint256 => uint256) storage claimed = _claimedBits[taskId][msg.sender];
        if (claimed[0] == 0) claimed[0] = 1;
        _pull(_configs[taskId].stakeToken, amount);
        emit Deposited(taskId, msg.sender, amount, st.amount);
    }

    /// @dev Writes a participant's stake slot with its eligibility recomputed from the task's minimum stake.
    function _storeStake(uint256 taskId, address account, Stake memory st) private {
        st.eligible = st.amount - st.pending >= _configs[taskId].minStake;
        _stakes[taskId][account] = st;
    }

    /// @dev Pulls exactly `amount` from the caller; a token that delivers less would break the books.
    function _pull(IERC20 token, uint256 amount) private {
        uint256 before = token.balanceOf(address(this));
        token.safeTransferFrom(msg.sender, address(this), amount);
        uint256 received = token.balanceOf(address(this)) - before;
        if (received != amount) revert UnsupportedTokenTransfer(address(token), amount, received);
    }

    function _releaseBudget(uint256 taskId, uint256 round, TaskBook storage book) private {
        RoundRecord storage rec = _rounds[taskId][round];
        uint256 budget = rec.budget;
        rec.budget = 0;
        book.escrow += budget;
        emit RoundBudgetReleased(taskId, round, budget);
    }

    // ================================================================= internal: rounds

    /// @dev Loads the task's current round and checks the caller targets it.
    function _currentRound(uint256 taskId, uint256 round) private view returns (TaskState memory s) {
        s = _states[taskId];
        if (s.round == 0) {
            _requireTask(taskId);
            revert UnexpectedRoundPhase(taskId, round, RoundPhase.None, _activePhases());
        }
        if (round != s.round) revert UnexpectedRound(taskId, s.round, round);
    }

    function _closeCommitPhase(uint256 taskId, uint256 round, uint16 commitCount) private {
        TaskConfig storage cfg = _configs[taskId];
        TaskState storage s = _states[taskId];
        uint256 revealEnd = block.timestamp + cfg.revealWindow;
        uint256 aggregationEnd = revealEnd + cfg.aggregationWindow;
        s.commitCount = commitCount;
        s.commitEnd = uint40(block.timestamp);
        s.revealEnd = uint40(revealEnd);
        s.aggregationEnd = uint40(aggregationEnd);
        emit PhaseClosedEarly(taskId, round, RoundPhase.Commit, block.timestamp, revealEnd, aggregationEnd);
    }

    function _closeRevealPhase(uint256 taskId, uint256 round, uint16 revealCount) private {
        TaskState storage s = _states[taskId];
        uint256 aggregationEnd = block.timestamp + _configs[taskId].aggregationWindow;
        s.revealCount = revealCount;
        s.revealEnd = uint40(block.timestamp);
        s.aggregationEnd = uint40(aggregationEnd);
        emit PhaseClosedEarly(
            taskId,
            round,
            RoundPhase.Reveal,
            block.timestamp,
            block.timestamp,
            aggregationEnd
        );
    }

    function _roundPhase(uint256 taskId, uint256 round) private view returns (RoundPhase) {
        TaskState memory s = _states[taskId];
        if (round == 0 || round > s.round) return RoundPhase.None;
        if (round < s.round) {
            return _rounds[taskId][round].finalizedAt != 0 ? RoundPhase.Finalized : RoundPhase.Failed;
        }
        return _currentPhase(s);
    }

    /// @dev The phase of the current round, from its deadlines alone (plus the finalized flag).
    function _currentPhase(TaskState memory s) private view returns (RoundPhase) {
        if (s.finalized) return RoundPhase.Finalized;
        if (block.timestamp < s.commitEnd) return RoundPhase.Commit;
        if (block.timestamp < s.revealEnd) return RoundPhase.Reveal;
        if (block.timestamp < s.aggregationEnd) return RoundPhase.Aggregation;
        return RoundPhase.Failed;
    }

    function _isFinished(RoundPhase phase) private pure returns (bool) {
        return phase == RoundPhase.Finalized || phase == RoundPhase.Failed;
    }

    function _phaseBit(RoundPhase phase) private pure returns (bytes32) {
        return bytes32(1 << uint8(phase));
    }

    function _finishedPhases() private pure returns (bytes32) {
        return _phaseBit(RoundPhase.Finalized) | _phaseBit(RoundPhase.Failed);
    }

    function _activePhases() private pure returns (bytes32) {
        return
            _phaseBit(RoundPhase.Commit) | _phaseBit(RoundPhase.Reveal) | _phaseBit(RoundPhase.Aggregation);
    }

    function _revealOverPhases() private pure returns (bytes32) {
        return _phaseBit(RoundPhase.Aggregation) | _finishedPhases();
    }

    // ================================================================= internal: commitments and slashing

    function _commitmentOf(
        uint256 taskId,
        uint256 round,
        address participant,
        bytes32 updateDigest,
        bytes32 salt
    ) private view returns (bytes32) {
        return
            keccak256(
                abi.encode(block.chainid, address(this), taskId, round, participant, updateDigest, salt)
            );
    }

    /// @dev What a revealed commitment slot holds: the round number, which no real keccak output resembles.
    function _revealedMarker(uint256 round) private pure returns (bytes32) {
        return bytes32(round);
    }

    function _isRevealed(uint256 taskId, address account, uint256 round) private view returns (bool) {
        return _commitments[taskId][account] == _revealedMarker(round);
    }

    /// @dev Whether `st`'s last commitment went unrevealed and unslashed past its reveal phase.
    function _owesNoReveal(uint256 taskId, address account, Stake memory st) private view returns (bool) {
        if (st.lastRound == 0 || st.slashed || _isRevealed(taskId, account, st.lastRound)) return false;
        RoundPhase phase = _roundPhase(taskId, st.lastRound);
        return phase != RoundPhase.Commit && phase != RoundPhase.Reveal;
    }

    /// @dev Applies an overdue no-reveal slash, so no stake leaves before paying for a withheld reveal.
    function _settleNoReveal(uint256 taskId, address account) private returns (Stake memory st) {
        st = _stakes[taskId][account];
        if (_owesNoReveal(taskId, account, st))
            st = _slash(taskId, st.lastRound, account, st, SlashReason.NoReveal);
    }

    /// @dev Moves `reason`'s share of the whole stake (pending part included) to the reward escrow.
    function _slash(
        uint256 taskId,
        uint256 round,
        address participant,
        Stake memory st,
        SlashReason reason
    ) private returns (Stake memory) {
        uint256 amount = (uint256(st.amount) * _slashRate(_configs[taskId], reason)) / BPS;
        st.amount -= uint96(amount);
        if (st.pending > st.amount) st.pending = st.amount;
        st.slashed = true;
        _storeStake(taskId, participant, st);
        _books[taskId].escrow += amount;
        emit Slashed(taskId, round, participant, reason, amount);
        return st;
    }

    function _slashRate(TaskConfig storage cfg, SlashReason reason) private view returns (uint256) {
        if (reason == SlashReason.Outlier) return cfg.outlierSlashBps;
        if (reason == SlashReason.Invalid) return cfg.invalidSlashBps;
        if (reason == SlashReason.Duplicate) return cfg.duplicateSlashBps;
        return cfg.noRevealSlashBps;
    }

    // ================================================================= internal: results

    /// @dev Rejects slash entries that could never apply; entries already slashed are skipped at finalization.
    function _validateSlashes(
        uint256 taskId,
        uint256 round,
        uint256 commitCount,
        SlashEntry[] calldata slashes
    ) private view {
        if (slashes.length > commitCount) revert SlashListTooLong(slashes.length, commitCount);
        for (uint256 i = 0; i < slashes.length; ++i) {
            address p = slashes[i].participant;
            if (_stakes[taskId][p].lastRound != round) revert SlashTargetNotCommitted(i, p, round);
            bool revealed = _isRevealed(taskId, p, round);
            SlashReason reason = slashes[i].reason;
            if (reason == SlashReason.None || (reason == SlashReason.NoReveal) == revealed) {
                revert InvalidSlashReason(i, p, reason, revealed);
            }
        }
    }

    function _finalize(
        uint256 taskId,
        uint256 round,
        RoundRecord storage rec,
        Result calldata result,
        bytes32 resultHash
    ) private {
        _states[taskId].finalized = true;
        TaskBook storage book = _books[taskId];
        book.globalModel = result.newModelDigest;
        uint256 returned = rec.budget - result.rewardsTotal;
        rec.rewardsRoot = result.rewardsRoot;
        rec.resultHash = resultHash;
        rec.unclaimed = uint96(result.rewardsTotal);
        rec.budget = 0;
        rec.finalizedAt = uint40(block.timestamp);
        book.escrow += returned;
        emit RoundFinalized(
            taskId,
            round,
            resultHash,
            result.newModelDigest,
            result.reportDigest,
            result.rewardsRoot,
            result.rewardsTotal,
            returned
        );
        for (uint256 i = 0; i < result.slashes.length; ++i) {
            address p = result.slashes[i].participant;
            Stake memory st = _stakes[taskId][p];
            // Already slashed this round (listed twice, or slashNoReveal got there first): never twice.
            if (!st.slashed) _slash(taskId, round, p, st, result.slashes[i].reason);
        }
    }

    /**
     * @dev Settles `agg`'s last submission once its round is over: if the round finalized with another result, takes
     * `dissentPenaltyBps` of the bond into the escrow. Returns whether a penalty was due.
     */
    function _settleDissent(
        uint256 taskId,
        address aggregator,
        Aggregator storage agg
    ) private returns (bool) {
        if (agg.settled) return false;
        agg.settled = true;
        uint256 round = agg.lastRound;
        RoundRecord storage rec = _rounds[taskId][round];
        if (rec.finalizedAt == 0 || _lastResults[taskId][aggregator] == rec.resultHash) return false;
        uint256 penalty = (uint256(agg.bond) * _configs[taskId].dissentPenaltyBps) / BPS;
        agg.bond -= uint96(penalty);
        _books[taskId].escrow += penalty;
        emit AggregatorPenalized(taskId, round, aggregator, penalty, agg.bond);
        return true;
    }
}
