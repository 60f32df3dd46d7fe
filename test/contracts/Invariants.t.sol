// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

// Test code is never deployed: assertion messages say what broke, however long, and comparisons read like the spec.
// solhint-disable gas-small-strings, gas-strict-inequalities, gas-increment-by-one

import {Hashes} from "@openzeppelin/contracts/utils/cryptography/Hashes.sol";
import {AnchorCoordinator} from "../../contracts/AnchorCoordinator.sol";
import {DemoToken} from "../../contracts/DemoToken.sol";
import {IAnchorCoordinator} from "../../contracts/IAnchorCoordinator.sol";
import {Assertions} from "./utils/Assertions.sol";
import {Fixture} from "./utils/Fixture.sol";
import {VM} from "./utils/Vm.sol";

// The handler lives in this file on purpose: Hardhat hands the fuzzer the artifacts of the test files it runs, so a
// handler in a separate non-test file is "no contract to fuzz" whenever this file is run alone.

/**
 * @notice Drives random sequences of protocol calls for the invariant tests: four participants (three slots a round) and three aggregators
 * (quorum 2) on one task of a real coordinator, with a clock the fuzzer moves. Every action is attempted whether or
 * not it should succeed (the contract must refuse what it must refuse); the handler records what it saw succeed in
 * ghost variables, and counts every success that should have been impossible in a violation counter the invariants
 * require to stay zero.
 */
contract CoordinatorHandler {
    uint256 internal constant TOKEN = Fixture.TOKEN;
    uint256 internal constant BPS = 10_000;
    uint256 internal constant PARTICIPANTS = 4;

    DemoToken public token;
    AnchorCoordinator public coordinator;
    uint256 public taskId;
    IAnchorCoordinator.TaskConfig internal cfg;
    address[] internal participants;
    address[] internal aggregators;

    /// @notice The clock the fuzzer moves with {warp}; every action runs at this time.
    uint256 public time;

    // ---- ghosts: what succeeded, per round
    mapping(uint256 round => address[]) internal committers;
    mapping(uint256 round => mapping(address => bool)) public committed;
    mapping(uint256 round => mapping(address => bool)) internal committedBogus;
    mapping(uint256 round => mapping(address => bool)) public revealed;
    mapping(uint256 round => uint256) public commits;
    mapping(uint256 round => uint256) public validReveals;
    mapping(uint256 round => uint256) public finalizations;
    mapping(uint256 round => bytes32) public finalResult;
    mapping(uint256 round => uint256) public rewardsTotal;
    mapping(uint256 round => address[]) internal rewardees;
    uint256[] internal rewardedRounds;
    mapping(uint256 round => mapping(address => uint256)) internal rewardOf;
    mapping(uint256 round => mapping(address => bool)) public claimed;
    mapping(uint256 round => uint256) public claimedTotal;
    mapping(uint256 round => mapping(address => uint256)) public slashes;

    // Amount each participant withdrew in the action being observed (stake that left, not a slash).
    mapping(address => uint256) private _withdrawn;

    // ---- violations: successes that must never happen (and refusals of what must always work)
    uint256 public depositsRefused;
    uint256 public wrongPayouts;
    uint256 public lockedWithdrawals;
    uint256 public mismatchedRevealsAccepted;
    uint256 public doubleReveals;
    uint256 public doubleCommits;
    uint256 public doubleFinalizations;
    uint256 public invalidResultsAccepted;
    uint256 public doubleClaims;
    uint256 public forgedClaims;
    uint256 public doubleSlashes;
    uint256 public unjustifiedSlashes;

    /// @notice Successful calls per action, to show what the runs exercised.
    mapping(bytes4 selector => uint256) public successes;

    // ---- reach: how often the states the invariants are about were reached. A run whose calls all reverted would
    // satisfy every invariant without having checked anything: {InvariantsTest.afterInvariant} requires these to grow.
    uint256 public finalizedRounds;
    uint256 public noRevealSlashes;
    uint256 public outlierSlashes;
    /// @notice Reveals that did not match their commitment, refused (see {reveal}).
    uint256 public refusedReveals;

    struct Snapshot {
        uint256 stake;
        uint256 lastRound;
    }

    constructor() {
        token = new DemoToken(address(this));
        coordinator = new AnchorCoordinator();
        participants = Fixture.actors("participant", PARTICIPANTS);
        aggregators = Fixture.actors("aggregator", 3);
        IAnchorCoordinator.TaskConfig memory c = Fixture.config(token, aggregators);
        c.unbondingDelay = 30;
        // Three slots for four participants: full rounds close their phases early and the last one is turned away.
        c.maxParticipants = 3;
        cfg = c;
        token.mint(address(this), 1_000_000 * TOKEN);
        token.approve(address(coordinator), type(uint256).max);
        taskId = coordinator.createTask(c);
        coordinator.fund(taskId, 20_000 * TOKEN);
        for (uint256 i = 0; i < aggregators.length; ++i) {
            Fixture.fundAccount(token, address(coordinator), aggregators[i], 10_000 * TOKEN);
            VM.prank(aggregators[i]);
            coordinator.bondAggregator(taskId);
        }
        // Everyone starts staked enough to commit, so runs spend their calls on rounds rather than on deposits.
        for (uint256 i = 0; i < PARTICIPANTS; ++i) {
            Fixture.fundAccount(token, address(coordinator), participants[i], 500 * TOKEN);
            VM.prank(participants[i]);
            coordinator.deposit(taskId, 500 * TOKEN);
        }
        time = block.timestamp;
    }

    /**
     * @dev Runs the action at the handler's clock and checks every stake decrease it caused that is not a
     * withdrawal: it must be a slash at one of the task's rates, at most one per participant and round, for a
     * no-reveal only if the participant did not reveal, for another reason only if it did.
     */
    modifier observed() {
        VM.warp(time);
        Snapshot[PARTICIPANTS] memory before = _snapshot();
        _;
        _checkSlashes(before);
    }

    // ================================================================ participants

    function deposit(uint256 actorSeed, uint256 amount) external {
        // In tenths of a token: the fuzzer favours small numbers, which should still make stakes that can commit.
        _deposit(_participant(actorSeed), (_bound(amount, 1, 20_000) * TOKEN) / 10);
    }

    function _deposit(address p, uint256 amount) private observed {
        token.mint(p, amount);
        VM.prank(p);
        try coordinator.deposit(taskId, amount) {
            ++successes[this.deposit.selector];
        } catch {
            ++depositsRefused;
        }
    }

    function requestWithdrawal(uint256 actorSeed, uint256 amount) external observed {
        address p = _participant(actorSeed);
        amount = _bound(amount, 1, coordinator.participantInfo(taskId, p).stake + 1);
        VM.prank(p);
        try coordinator.requestWithdrawal(taskId, amount) {
            ++successes[this.requestWithdrawal.selector];
        } catch {}
    }

    function withdraw(uint256 actorSeed) external observed {
        address p = _participant(actorSeed);
        uint256 lastRound = coordinator.participantInfo(taskId, p).lastRound;
        // Locked: its round is the current one, not finalized by the ghosts' account, and before its deadline.
        uint256 current = coordinator.currentRound(taskId);
        bool locked =
            lastRound != 0 &&
                lastRound == current &&
                finalizations[current] == 0 &&
                block.timestamp < coordinator.roundInfo(taskId, current).aggregationEnd;
        uint256 walletBefore = token.balanceOf(p);
        VM.prank(p);
        try coordinator.withdraw(taskId) returns (uint256 amount) {
            ++successes[this.withdraw.selector];
            if (locked) ++lockedWithdrawals;
            if (token.balanceOf(p) - walletBefore != amount) ++wrongPayouts;
            _withdrawn[p] = amount;
        } catch {}
    }

    /**
     * @dev One commit in eight replays a commitment bound to another round, which no reveal can ever match. A quarter
     * of the commits made while no round runs have the task owner open one first, as a live task's owner would.
     */
    function commit(uint256 actorSeed, uint256 replaySeed) external {
        _commit(_participant(actorSeed), replaySeed % 8 == 0, (replaySeed >> 8) % 4 == 0);
    }

    /// @dev `bogus`: the commitment is bound to the next round. `open`: a round is opened first if none runs.
    function _commit(address p, bool bogus, bool open) private observed {
        uint256 round = coordinator.currentRound(taskId);
        if (open && (round == 0 || _finished(coordinator.roundPhase(taskId, round)))) {
            try coordinator.openRound(taskId) returns (uint256 opened) {
                round = opened;
                ++successes[this.openRound.selector];
            } catch {}
        }
        bytes32 c = Fixture.commitment(
            block.chainid,
            address(coordinator),
            taskId,
            bogus ? round + 1 : round,
            p,
            _digestOf(p, round),
            _saltOf(p, round)
        );
        VM.prank(p);
        try coordinator.commit(taskId, round, c) {
            ++successes[this.commit.selector];
            if (committed[round][p]) ++doubleCommits;
            committed[round][p] = true;
            committedBogus[round][p] = bogus;
            committers[round].push(p);
            ++commits[round];
        } catch {}
    }

    /**
     * @dev `lie % 8` 1 reveals a wrong digest, 2 a wrong salt, 3 another participant's values, anything else the
     * committed values. Three in four of a committer's reveals during Commit wait for the phase to end (the others revert,
     * which leaves the phase open for more commits).
     */
    function reveal(uint256 actorSeed, uint256 lie) external {
        _reveal(_pick(committers[coordinator.currentRound(taskId)], actorSeed), lie % 8, (lie >> 8) % 4 != 0);
    }

    /// @dev `lie` as in {reveal}; `wait`: a committer's reveal during Commit first waits for the phase to end.
    function _reveal(address p, uint256 lie, bool wait) private observed {
        uint256 round = coordinator.currentRound(taskId);
        if (committed[round][p] && wait) _waitFor(round, IAnchorCoordinator.RoundPhase.Commit);
        address source = lie == 3 ? _nextParticipant(p) : p;
        bytes32 digest = _digestOf(source, round);
        bytes32 salt = _saltOf(source, round);
        if (lie == 1) digest = keccak256(abi.encode(digest));
        if (lie == 2) salt = keccak256(abi.encode(salt));
        bool matches = lie != 1 && lie != 2 && lie != 3 && committed[round][p] && !committedBogus[round][p];
        // A refusal that only the commitment check can explain: a committer's first reveal, during Reveal.
        bool mismatch =
            !matches &&
                committed[round][p] &&
                !revealed[round][p] &&
                coordinator.roundPhase(taskId, round) == IAnchorCoordinator.RoundPhase.Reveal;
        VM.prank(p);
        try coordinator.reveal(taskId, round, digest, 600, salt, bytes32(0)) {
            ++successes[this.reveal.selector];
            if (!matches) ++mismatchedRevealsAccepted;
            if (revealed[round][p]) ++doubleReveals;
            revealed[round][p] = true;
            ++validReveals[round];
        } catch {
            if (mismatch) ++refusedReveals;
        }
    }

    function slashNoReveal(uint256 actorSeed, uint256 roundSeed) external observed {
        uint256 round = _bound(roundSeed, 0, coordinator.currentRound(taskId));
        address p = _pick(committers[round], actorSeed);
        try coordinator.slashNoReveal(taskId, round, p) {
            ++successes[this.slashNoReveal.selector];
        } catch {}
    }

    /// @dev One claim in eight asks one unit more than its leaf; a claim for a round without a leaf asks 1 unit.
    function claim(uint256 actorSeed, uint256 roundSeed, uint256 cheatSeed) external {
        // Mostly a round with rewards to claim; otherwise any round, even one not opened yet.
        uint256 round =
            rewardedRounds.length != 0 && (roundSeed >> 128) % 8 != 0
                ? rewardedRounds[roundSeed % rewardedRounds.length]
                : _bound(roundSeed, 1, coordinator.currentRound(taskId) + 1);
        _claim(round, _pick(rewardees[round], actorSeed), cheatSeed % 8 == 0);
    }

    function _claim(uint256 round, address p, bool inflate) private observed {
        uint256 amount = rewardOf[round][p];
        bytes32[] memory proof = _proof(round, p);
        if (inflate || amount == 0) ++amount;
        uint256 walletBefore = token.balanceOf(p);
        VM.prank(p);
        try coordinator.claim(taskId, round, amount, proof) {
            ++successes[this.claim.selector];
            if (claimed[round][p]) ++doubleClaims;
            if (amount != rewardOf[round][p]) ++forgedClaims;
            if (token.balanceOf(p) - walletBefore != amount) ++wrongPayouts;
            claimed[round][p] = true;
            claimedTotal[round] += amount;
        } catch {}
    }

    // ================================================================ owner and aggregators

    /**
     * @dev A quarter of the calls made during Aggregation first wait for the window to pass (the round then Failed):
     * more would fail most rounds before their results came in.
     */
    function openRound(uint256 callerSeed) external observed {
        if ((callerSeed >> 8) % 4 == 0) {
            _waitFor(coordinator.currentRound(taskId), IAnchorCoordinator.RoundPhase.Aggregation);
        }
        // The task owner (this handler) or one of the aggregators.
        uint256 i = callerSeed % (aggregators.length + 1);
        if (i < aggregators.length) VM.prank(aggregators[i]);
        try coordinator.openRound(taskId) {
            ++successes[this.openRound.selector];
        } catch {}
    }

    function fund(uint256 amount) external {
        _fund(_bound(amount, 1, 5_000 * TOKEN));
    }

    function _fund(uint256 amount) private observed {
        token.mint(address(this), amount);
        coordinator.fund(taskId, amount);
        ++successes[this.fund.selector];
    }

    /**
     * @dev `variant % 6` 4 submits a dissenting result, 5 an invalid one (a revealer slashed for not revealing), which
     * must never be accepted, anything else the round's honest result (slashes every committer that did not reveal,
     * and the first revealer as an outlier when all three revealed; rewards the other revealers). A submission
     * during Reveal first waits for the phase to end. Seven in eight come from an aggregator that has not submitted
     * to the round yet, if there is one; three in four from an aggregator whose bond fell short (unbonded, or
     * penalised for dissent) top it up first, as one that means to submit would: without these, a run's first
     * unbonds or dissents left it without a quorum, and without finalizations, for the rest of its calls.
     */
    function submitResult(uint256 aggregatorSeed, uint256 variant) external {
        uint256 round = coordinator.currentRound(taskId);
        uint256 i = aggregatorSeed % aggregators.length;
        if ((aggregatorSeed >> 16) % 8 != 0) {
            for (
                uint256 tried = 1;
                tried < aggregators.length && _submitted(aggregators[i], round);
                ++tried
            ) {
                i = (i + 1) % aggregators.length;
            }
        }
        _submitResult(aggregators[i], variant % 6, (aggregatorSeed >> 8) % 4 != 0);
    }

    function _submitResult(address aggregator, uint256 variant, bool topUp) private observed {
        uint256 round = coordinator.currentRound(taskId);
        _waitFor(round, IAnchorCoordinator.RoundPhase.Reveal);
        if (topUp) {
            // A dissent penalty still due would be taken by the submission itself, leaving the bond short.
            try coordinator.penalizeDissent(taskId, aggregator) {
                ++successes[this.penalizeDissent.selector];
            } catch {}
            if (coordinator.aggregatorInfo(taskId, aggregator).bond < cfg.aggregatorBond) {
                VM.prank(aggregator);
                try coordinator.bondAggregator(taskId) {
                    ++successes[this.bondAggregator.selector];
                } catch {}
            }
        }
        if (variant == 5 && validReveals[round] == 0) return; // no revealer to slash wrongly
        IAnchorCoordinator.Result memory r =
            variant == 4
                ? _dissent(round)
                : variant == 5
                    ? _invalid(round)
                    : _honest(round);
        bool wasFinalized = coordinator.roundInfo(taskId, round).finalizedAt != 0;
        VM.prank(aggregator);
        try coordinator.submitResult(taskId, round, r) {
            ++successes[this.submitResult.selector];
            if (variant == 5) ++invalidResultsAccepted;
            if (coordinator.roundInfo(taskId, round).finalizedAt == 0) return;
            if (wasFinalized) ++doubleFinalizations;
            _recordFinalization(round, r);
        } catch {}
    }

    function bondAggregator(uint256 aggregatorSeed) external observed {
        VM.prank(aggregators[aggregatorSeed % aggregators.length]);
        try coordinator.bondAggregator(taskId) {
            ++successes[this.bondAggregator.selector];
        } catch {}
    }

    function unbondAggregator(uint256 aggregatorSeed) external observed {
        VM.prank(aggregators[aggregatorSeed % aggregators.length]);
        try coordinator.unbondAggregator(taskId) {
            ++successes[this.unbondAggregator.selector];
        } catch {}
    }

    function penalizeDissent(uint256 aggregatorSeed) external observed {
        try coordinator.penalizeDissent(taskId, aggregators[aggregatorSeed % aggregators.length]) {
            ++successes[this.penalizeDissent.selector];
        } catch {}
    }

    /**
     * @notice Moves the clock forward: to the last or the first second of the current round's next deadline (where
     * off-by-one bugs live), mostly by 1 to 20 s, sometimes by up to 400 s (windows are 100 s).
     */
    function warp(uint256 seed) external {
        uint256 mode = seed % 8;
        uint256 deadline = _nextDeadline();
        if (mode < 2 && deadline > time + 1) time = deadline - 1 + mode;
        else if (mode < 6) time += _bound(seed >> 8, 1, 20);
        else time += _bound(seed >> 8, 1, 400);
        ++successes[this.warp.selector];
    }

    // ================================================================ after each run

    /**
     * @notice Not a fuzzed action ({InvariantsTest.targetSelectors} leaves it out): {InvariantsTest.afterInvariant}
     * calls it after each run. From whatever state the run left, lets the current round run out, then plays one
     * round honestly to the end: three participants top up their stake and commit; all three reveal (`allReveal`:
     * the first is slashed as an outlier) or the first two (the third is slashed for not revealing), each after a
     * lying reveal that must be refused; two aggregators submit the honest result; the rewarded revealers claim. Each
     * step is an observed action like the fuzzed ones.
     */
    function playHonestRound(bool allReveal) external {
        VM.warp(time);
        uint256 round = coordinator.currentRound(taskId);
        _waitFor(round, IAnchorCoordinator.RoundPhase.Commit);
        _waitFor(round, IAnchorCoordinator.RoundPhase.Reveal);
        _waitFor(round, IAnchorCoordinator.RoundPhase.Aggregation);
        _fund(cfg.rewardPerRound);
        for (uint256 i = 0; i < cfg.maxParticipants; ++i) {
            // Free stake (above any pending withdrawal) enough to commit, even after the commit's own slash for a
            // missing reveal in the run's last round.
            uint256 pending = coordinator.participantInfo(taskId, participants[i]).pendingWithdrawal;
            _deposit(participants[i], 2 * (cfg.minStake + pending));
            _commit(participants[i], false, true);
        }
        round = coordinator.currentRound(taskId);
        for (uint256 i = 0; i < (allReveal ? cfg.maxParticipants : cfg.maxParticipants - 1); ++i) {
            _reveal(participants[i], 1 + i, true); // refused: a wrong digest, a wrong salt, another's values
            _reveal(participants[i], 0, true);
        }
        _submitResult(aggregators[0], 0, true);
        _submitResult(aggregators[1], 0, true);
        for (uint256 i = 0; i < rewardees[round].length; ++i) _claim(round, rewardees[round][i], false);
    }

    // ================================================================ views for the invariants

    function participantList() external view returns (address[] memory) {
        return participants;
    }

    function aggregatorList() external view returns (address[] memory) {
        return aggregators;
    }

    function maxParticipants() external view returns (uint256) {
        return cfg.maxParticipants;
    }

    // ================================================================ internals

    /// @dev The current round's next deadline after the handler's clock (0 when there is none).
    function _nextDeadline() private view returns (uint256) {
        uint256 round = coordinator.currentRound(taskId);
        if (round == 0) return 0;
        IAnchorCoordinator.RoundInfo memory info = coordinator.roundInfo(taskId, round);
        if (time < info.commitEnd) return info.commitEnd;
        if (time < info.revealEnd) return info.revealEnd;
        if (time < info.aggregationEnd) return info.aggregationEnd;
        return 0;
    }

    /// @dev If `round` is in `phase`, moves the clock to the phase's end (so the fuzzer's sequences reach later phases).
    function _waitFor(uint256 round, IAnchorCoordinator.RoundPhase phase) private {
        if (round == 0 || coordinator.roundPhase(taskId, round) != phase) return;
        IAnchorCoordinator.RoundInfo memory info = coordinator.roundInfo(taskId, round);
        time =
            phase == IAnchorCoordinator.RoundPhase.Commit
                ? info.commitEnd
                : phase == IAnchorCoordinator.RoundPhase.Reveal
                    ? info.revealEnd
                    : info.aggregationEnd;
        VM.warp(time);
    }

    function _participant(uint256 seed) private view returns (address) {
        return participants[seed % PARTICIPANTS];
    }

    function _nextParticipant(address p) private view returns (address) {
        for (uint256 i = 0; i < PARTICIPANTS; ++i) {
            if (participants[i] == p) return participants[(i + 1) % PARTICIPANTS];
        }
        revert("not a participant");
    }

    /**
     * @dev Mostly one of `relevant` (the round's committers or reward holders), so actions meet the state they
     * need; one time in eight, or when there is none, any participant.
     */
    function _pick(address[] storage relevant, uint256 seed) private view returns (address) {
        if (relevant.length == 0 || (seed >> 128) % 8 == 0) return _participant(seed);
        return relevant[seed % relevant.length];
    }

    function _digestOf(address p, uint256 round) private pure returns (bytes32) {
        return keccak256(abi.encode("update", p, round));
    }

    function _saltOf(address p, uint256 round) private pure returns (bytes32) {
        return keccak256(abi.encode("salt", p, round));
    }

    function _submitted(address aggregator, uint256 round) private view returns (bool) {
        return coordinator.aggregatorInfo(taskId, aggregator).lastRound == round;
    }

    function _finished(IAnchorCoordinator.RoundPhase phase) private pure returns (bool) {
        return
            phase == IAnchorCoordinator.RoundPhase.Finalized || phase == IAnchorCoordinator.RoundPhase.Failed;
    }

    function _bound(uint256 x, uint256 min, uint256 max) private pure returns (uint256) {
        return min + (x % (max - min + 1));
    }

    function _honest(uint256 round) private view returns (IAnchorCoordinator.Result memory r) {
        address[] storage list = committers[round];
        address[] memory rewarded = _rewarded(round);
        r.slashes = new IAnchorCoordinator.SlashEntry[](list.length - rewarded.length);
        uint256 s;
        for (uint256 i = 0; i < list.length; ++i) {
            address p = list[i];
            if (!revealed[round][p]) {
                r.slashes[s++] = IAnchorCoordinator.SlashEntry(p, IAnchorCoordinator.SlashReason.NoReveal);
            } else if (!_contains(rewarded, p)) {
                // The one revealer left out of the rewards is the outlier.
                r.slashes[s++] = IAnchorCoordinator.SlashEntry(p, IAnchorCoordinator.SlashReason.Outlier);
            }
        }
        r.newModelDigest = keccak256(abi.encode("model", round));
        r.reportDigest = keccak256(abi.encode("report", round));
        if (rewarded.length == 0) return r;
        uint256 each = coordinator.roundInfo(taskId, round).budget / (rewarded.length + 1);
        if (each == 0) return r;
        bytes32[] memory leaves = new bytes32[](rewarded.length);
        for (uint256 i = 0; i < rewarded.length; ++i) leaves[i] = Fixture.rewardLeaf(rewarded[i], each);
        r.rewardsTotal = each * rewarded.length;
        r.rewardsRoot = _root(leaves);
    }

    function _dissent(uint256 round) private pure returns (IAnchorCoordinator.Result memory r) {
        r.newModelDigest = keccak256(abi.encode("other model", round));
        r.reportDigest = keccak256(abi.encode("other report", round));
    }

    /// @dev A result slashing the first participant that revealed for not revealing.
    function _invalid(uint256 round) private view returns (IAnchorCoordinator.Result memory r) {
        r = _dissent(round);
        address[] storage list = committers[round];
        for (uint256 i = 0; i < list.length; ++i) {
            if (!revealed[round][list[i]]) continue;
            r.slashes = new IAnchorCoordinator.SlashEntry[](1);
            r.slashes[0] = IAnchorCoordinator.SlashEntry(list[i], IAnchorCoordinator.SlashReason.NoReveal);
            return r;
        }
    }

    /// @dev Who the honest result rewards: every revealer, in commit order, except the first when three revealed.
    function _rewarded(uint256 round) private view returns (address[] memory out) {
        address[] storage list = committers[round];
        uint256 revealers = validReveals[round];
        bool skipFirst = revealers >= 3;
        out = new address[](revealers - (skipFirst ? 1 : 0));
        uint256 n;
        for (uint256 i = 0; i < list.length; ++i) {
            if (!revealed[round][list[i]]) continue;
            if (skipFirst) {
                skipFirst = false;
                continue;
            }
            out[n++] = list[i];
        }
    }

    function _contains(address[] memory xs, address x) private pure returns (bool) {
        for (uint256 i = 0; i < xs.length; ++i) if (xs[i] == x) return true;
        return false;
    }

    function _recordFinalization(uint256 round, IAnchorCoordinator.Result memory r) private {
        ++finalizations[round];
        ++finalizedRounds;
        finalResult[round] = coordinator.resultHashOf(r);
        rewardsTotal[round] = r.rewardsTotal;
        if (r.rewardsTotal == 0) return;
        rewardedRounds.push(round);
        address[] memory rewarded = _rewarded(round);
        for (uint256 i = 0; i < rewarded.length; ++i) {
            rewardees[round].push(rewarded[i]);
            rewardOf[round][rewarded[i]] = r.rewardsTotal / rewarded.length;
        }
    }

    /// @dev The proof of `p`'s leaf in `round`'s reward tree (empty when `p` has no leaf).
    function _proof(uint256 round, address p) private view returns (bytes32[] memory proof) {
        address[] storage list = rewardees[round];
        bytes32[] memory level = new bytes32[](list.length);
        uint256 index = type(uint256).max;
        for (uint256 i = 0; i < list.length; ++i) {
            level[i] = Fixture.rewardLeaf(list[i], rewardOf[round][list[i]]);
            if (list[i] == p) index = i;
        }
        if (index == type(uint256).max) return proof;
        bytes32[] memory siblings = new bytes32[](8);
        uint256 depth;
        while (level.length > 1) {
            uint256 sibling = index ^ 1;
            if (sibling < level.length) siblings[depth++] = level[sibling];
            level = _up(level);
            index >>= 1;
        }
        proof = new bytes32[](depth);
        for (uint256 i = 0; i < depth; ++i) proof[i] = siblings[i];
    }

    /// @dev A Merkle root with OpenZeppelin's commutative pair hash (an odd node moves up unchanged).
    function _root(bytes32[] memory level) private pure returns (bytes32) {
        while (level.length > 1) level = _up(level);
        return level[0];
    }

    function _up(bytes32[] memory level) private pure returns (bytes32[] memory next) {
        next = new bytes32[]((level.length + 1) / 2);
        for (uint256 i = 0; i < level.length / 2; ++i) {
            next[i] = Hashes.commutativeKeccak256(level[2 * i], level[2 * i + 1]);
        }
        if (level.length % 2 == 1) next[next.length - 1] = level[level.length - 1];
    }

    function _snapshot() private view returns (Snapshot[PARTICIPANTS] memory s) {
        for (uint256 i = 0; i < PARTICIPANTS; ++i) {
            IAnchorCoordinator.ParticipantInfo memory info = coordinator.participantInfo(
                taskId,
                participants[i]
            );
            s[i] = Snapshot(info.stake, info.lastRound);
        }
    }

    function _checkSlashes(Snapshot[PARTICIPANTS] memory before) private {
        for (uint256 i = 0; i < PARTICIPANTS; ++i) {
            address p = participants[i];
            uint256 left = before[i].stake - _withdrawn[p];
            _withdrawn[p] = 0;
            uint256 stake = coordinator.participantInfo(taskId, p).stake;
            if (stake >= left) continue;
            uint256 round = before[i].lastRound;
            uint256 amount = left - stake;
            if (++slashes[round][p] > 1) ++doubleSlashes;
            // A slash comes before any payout in the same call, so its rate applies to the whole earlier stake.
            bool noReveal = amount == (before[i].stake * cfg.noRevealSlashBps) / BPS;
            bool outlier = amount == (before[i].stake * cfg.outlierSlashBps) / BPS;
            bool justified =
                committed[round][p] && ((noReveal && !revealed[round][p]) || (outlier && revealed[round][p]));
            if (!justified) ++unjustifiedSlashes;
            else if (revealed[round][p]) ++outlierSlashes;
            else ++noRevealSlashes;
        }
    }
}

/**
 * @notice Invariants of the coordinator after any sequence of deposits, withdrawal requests, withdrawals, round
 * openings, commits (honest or replayed), reveals (honest or lying), no-reveal slashes, results (honest, dissenting
 * or invalid), claims (honest or inflated), bonding, unbonding, dissent penalties, funding and clock moves, driven by
 * {CoordinatorHandler}.
 * forge-config: default.invariant.runs = 256
 * forge-config: default.invariant.depth = 100
 */
contract InvariantsTest is Assertions {
    /// @dev The shape the runner reads from {targetSelectors} (as in forge-std's StdInvariant).
    struct FuzzSelector {
        address addr;
        bytes4[] selectors;
    }

    CoordinatorHandler internal handler;
    AnchorCoordinator internal coordinator;
    DemoToken internal token;
    uint256 internal taskId;

    function setUp() public {
        handler = new CoordinatorHandler();
        coordinator = handler.coordinator();
        token = handler.token();
        taskId = handler.taskId();
    }

    /// @notice Only the handler's actions are called.
    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    /**
     * @notice The handler's actions, weighted by repetition (the fuzzer picks a list entry uniformly): the round's
     * own steps come up more often than the rare ones, so a depth of a few dozen calls plays whole rounds.
     */
    function targetSelectors() public view returns (FuzzSelector[] memory targets) {
        bytes4[14] memory actions = [
            handler.deposit.selector,
            handler.requestWithdrawal.selector,
            handler.withdraw.selector,
            handler.openRound.selector,
            handler.commit.selector,
            handler.reveal.selector,
            handler.slashNoReveal.selector,
            handler.submitResult.selector,
            handler.claim.selector,
            handler.warp.selector,
            handler.bondAggregator.selector,
            handler.unbondAggregator.selector,
            handler.penalizeDissent.selector,
            handler.fund.selector
        ];
        uint8[14] memory weights = [3, 2, 2, 3, 10, 7, 2, 6, 6, 4, 1, 1, 1, 1];
        uint256 total;
        for (uint256 i = 0; i < weights.length; ++i) total += weights[i];
        bytes4[] memory selectors = new bytes4[](total);
        uint256 n;
        for (uint256 i = 0; i < actions.length; ++i) {
            for (uint256 w = 0; w < weights[i]; ++w) selectors[n++] = actions[i];
        }
        targets = new FuzzSelector[](1);
        targets[0] = FuzzSelector(address(handler), selectors);
    }

    /**
     * @notice Runs after every run (call sequence) of each campaign: the runner, like Foundry's, has no hook at the end
     * of a whole campaign, and a run's state is gone when the next one starts. Random runs of 100 calls reach some of
     * the states the invariants are about only sometimes (measured over 1,520 runs: a finalization in 78%, a reveal in
     * 78%, a refused lying reveal in 68%, a claim in 24%, an outlier slash in none), too rarely to require of each
     * run. So each run ends with two honest closing rounds played from whatever state it left, through the same
     * handler code as the fuzzed calls, with every invariant checked after each; they must finalize, slash an outlier
     * and a missing reveal, refuse five lying reveals and pay four claims. A handler path that always reverted fails
     * here instead of letting the invariants pass unexercised.
     */
    function afterInvariant() public {
        uint256 finalized = handler.finalizedRounds();
        uint256 outliers = handler.outlierSlashes();
        uint256 noReveals = handler.noRevealSlashes();
        uint256 mismatches = handler.refusedReveals();
        uint256 claims = handler.successes(handler.claim.selector);
        handler.playHonestRound(true);
        _checkEverything();
        handler.playHonestRound(false);
        _checkEverything();
        assertEq(handler.finalizedRounds(), finalized + 2, "closing rounds finalized");
        assertEq(handler.outlierSlashes(), outliers + 1, "outlier slashes in the closing rounds");
        assertGe(handler.noRevealSlashes(), noReveals + 1, "no-reveal slashes in the closing rounds");
        assertEq(handler.refusedReveals(), mismatches + 5, "lying reveals refused in the closing rounds");
        assertEq(
            handler.successes(handler.claim.selector),
            claims + 4,
            "rewards claimed in the closing rounds"
        );
    }

    // Each invariant function is a fuzzing campaign of its own, so the properties are grouped into three campaigns
    // that can afford deep sequences (several rounds each) rather than seven shallow ones.

    /// @notice Money: nothing created or lost, locked stake stays, every slash justified and single.
    function invariant_moneyIsConservedAndStakeIsHeld() public {
        VM.warp(handler.time());
        _tokenBalanceEqualsWhatTheCoordinatorOwes();
        _lockedStakeCannotBeWithdrawn();
        _slashesAreJustifiedAndSingle();
    }

    /// @notice Commit-reveal: one commitment per address per round; a reveal that does not match never counts.
    function invariant_commitAndRevealRulesHold() public {
        VM.warp(handler.time());
        _noAddressCommitsTwiceInARound();
        _mismatchedRevealsNeverCount();
    }

    /// @notice Results and rewards: no round finalizes twice, no reward is claimed twice.
    function invariant_roundsFinalizeOnceAndRewardsPayOnce() public {
        VM.warp(handler.time());
        _noRoundFinalizesTwice();
        _noRewardIsClaimedTwice();
    }

    function _checkEverything() private {
        VM.warp(handler.time());
        _tokenBalanceEqualsWhatTheCoordinatorOwes();
        _lockedStakeCannotBeWithdrawn();
        _slashesAreJustifiedAndSingle();
        _noAddressCommitsTwiceInARound();
        _mismatchedRevealsNeverCount();
        _noRoundFinalizesTwice();
        _noRewardIsClaimedTwice();
    }

    /**
     * Nothing created or lost: the coordinator holds exactly the stakes, the aggregator bonds, the reward escrow
     * (which has absorbed slashes, penalties and returned budgets), the budgets of rounds not yet settled and the
     * unclaimed rewards of finalized rounds; every payout equalled what the contract reported.
     */
    function _tokenBalanceEqualsWhatTheCoordinatorOwes() private view {
        uint256 owed = coordinator.taskInfo(taskId).rewardEscrow;
        address[] memory ps = handler.participantList();
        for (uint256 i = 0; i < ps.length; ++i) owed += coordinator.participantInfo(taskId, ps[i]).stake;
        address[] memory aggs = handler.aggregatorList();
        for (uint256 i = 0; i < aggs.length; ++i) owed += coordinator.aggregatorInfo(taskId, aggs[i]).bond;
        uint256 rounds = coordinator.currentRound(taskId);
        for (uint256 r = 1; r <= rounds; ++r) {
            IAnchorCoordinator.RoundInfo memory info = coordinator.roundInfo(taskId, r);
            owed += info.budget + info.unclaimedRewards;
        }
        assertEq(token.balanceOf(address(coordinator)), owed, "coordinator balance = what it owes");
        assertEq(handler.wrongPayouts(), 0, "payouts that differ from the reported amount");
        assertEq(handler.depositsRefused(), 0, "ordinary deposits refused");
    }

    /// Stake backing a commitment in an unfinished round never leaves; a pending withdrawal never exceeds the stake.
    function _lockedStakeCannotBeWithdrawn() private view {
        assertEq(handler.lockedWithdrawals(), 0, "withdrawals while the stake backed an unfinished round");
        address[] memory ps = handler.participantList();
        for (uint256 i = 0; i < ps.length; ++i) {
            IAnchorCoordinator.ParticipantInfo memory info = coordinator.participantInfo(taskId, ps[i]);
            assertLe(info.pendingWithdrawal, info.stake, "pending withdrawal above stake");
        }
    }

    /// A reveal that does not match its commitment never counts: not in the count, not in a participant's flag.
    function _mismatchedRevealsNeverCount() private view {
        assertEq(
            handler.mismatchedRevealsAccepted(),
            0,
            "reveals accepted that do not match their commitment"
        );
        assertEq(handler.doubleReveals(), 0, "participants that revealed twice in a round");
        uint256 round = coordinator.currentRound(taskId);
        if (round == 0) return;
        assertEq(
            coordinator.roundInfo(taskId, round).revealCount,
            handler.validReveals(round),
            "revealCount"
        );
        address[] memory ps = handler.participantList();
        for (uint256 i = 0; i < ps.length; ++i) {
            IAnchorCoordinator.ParticipantInfo memory info = coordinator.participantInfo(taskId, ps[i]);
            if (info.lastRound == 0) continue;
            assertTrue(
                info.revealed == handler.revealed(info.lastRound, ps[i]),
                "revealed flag differs from the ghost"
            );
        }
    }

    /// No address commits twice in a round, and no round takes more commitments than its slots.
    function _noAddressCommitsTwiceInARound() private view {
        assertEq(handler.doubleCommits(), 0, "second commitments accepted in one round");
        uint256 round = coordinator.currentRound(taskId);
        if (round == 0) return;
        uint256 count = coordinator.roundInfo(taskId, round).commitCount;
        assertEq(count, handler.commits(round), "commitCount");
        assertLe(count, handler.maxParticipants(), "commitCount above maxParticipants");
    }

    /// No round finalizes twice, an invalid result is never accepted, and a finalized result never changes.
    function _noRoundFinalizesTwice() private view {
        assertEq(handler.doubleFinalizations(), 0, "rounds finalized twice");
        assertEq(handler.invalidResultsAccepted(), 0, "invalid results accepted");
        uint256 rounds = coordinator.currentRound(taskId);
        for (uint256 r = 1; r <= rounds; ++r) {
            uint256 finalizations = handler.finalizations(r);
            assertLe(finalizations, 1, "finalizations of one round");
            bool finalized = coordinator.roundPhase(taskId, r) == IAnchorCoordinator.RoundPhase.Finalized;
            assertTrue(finalized == (finalizations == 1), "Finalized phase differs from the ghost");
            if (finalized)
                assertEq(coordinator.roundInfo(taskId, r).resultHash, handler.finalResult(r), "result");
        }
    }

    /// No reward is claimed twice or inflated; a round's claims and unclaimed rest add up to its rewardsTotal.
    function _noRewardIsClaimedTwice() private view {
        assertEq(handler.doubleClaims(), 0, "rewards claimed twice");
        assertEq(handler.forgedClaims(), 0, "claims of amounts not in the tree");
        uint256 rounds = coordinator.currentRound(taskId);
        address[] memory ps = handler.participantList();
        for (uint256 r = 1; r <= rounds; ++r) {
            uint256 unclaimed = coordinator.roundInfo(taskId, r).unclaimedRewards;
            assertEq(handler.claimedTotal(r) + unclaimed, handler.rewardsTotal(r), "claimed + unclaimed");
            for (uint256 i = 0; i < ps.length; ++i) {
                assertTrue(
                    coordinator.hasClaimed(taskId, r, ps[i]) == handler.claimed(r, ps[i]),
                    "hasClaimed"
                );
            }
        }
    }

    /// Every slash is at a configured rate, at most one per participant and round, and for a reason that holds.
    function _slashesAreJustifiedAndSingle() private view {
        assertEq(handler.doubleSlashes(), 0, "participants slashed twice in one round");
        assertEq(handler.unjustifiedSlashes(), 0, "slashes without a matching reason or rate");
    }
}
