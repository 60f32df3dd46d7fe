// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

// Test code is never deployed: assertion messages say what broke, however long, and comparisons read like the spec.
// solhint-disable gas-small-strings, gas-strict-inequalities

import {IAnchorCoordinator} from "../../contracts/IAnchorCoordinator.sol";
import {CoordinatorTest} from "./utils/CoordinatorTest.sol";
import {Fixture} from "./utils/Fixture.sol";
import {VM} from "./utils/Vm.sol";

/**
 * @notice Fuzz tests of stake accounting. A model of one participant (stake, pending withdrawal, unlock time, last
 * commitment) predicts every call's outcome, success or the exact custom error, for random sequences of deposits,
 * withdrawal requests, withdrawals, commits, reveals, no-reveal slashes and clock moves; after every step the
 * contract must agree with the model, stake must equal deposits - withdrawals - slashes, and the coordinator must
 * hold exactly what it owes.
 */
contract StakeTest is CoordinatorTest {
    using Fixture for *;

    /// @dev What the test believes about the participant and the task's current round.
    struct Model {
        uint256 stake;
        uint256 pending;
        uint256 unlockAt;
        uint256 lastRound;
        bool revealed;
        bool slashed;
        uint256 deposited;
        uint256 withdrawn;
        uint256 slashedTotal;
        uint256 minted;
    }

    enum Op {
        Deposit,
        RequestWithdrawal,
        Withdraw,
        Commit,
        Reveal,
        SlashNoReveal,
        Warp
    }

    uint256 private constant NO_REVEAL_BPS = 2_000;
    uint256 private constant UNBONDING_DELAY = 50;

    Model private model;
    address private p;
    address private slasher;
    // The current round's number and deadlines as the model derives them.
    uint256 private round;
    uint256 private commitEnd;
    uint256 private revealEnd;
    uint256 private aggregationEnd;

    function setUp() public override {
        super.setUp();
        p = participants[0];
        slasher = participants[1];
        model.minted = 10_000 * TOKEN;
    }

    function testFuzz_randomStakeSequencesKeepTheBooks(uint256[24] calldata steps) public {
        for (uint256 i = 0; i < steps.length; ++i) {
            Op op = Op(steps[i] % 7);
            uint256 arg = steps[i] >> 8;
            if (op == Op.Deposit) _stepDeposit(arg);
            else if (op == Op.RequestWithdrawal) _stepRequestWithdrawal(arg);
            else if (op == Op.Withdraw) _stepWithdraw();
            else if (op == Op.Commit) _stepCommit();
            else if (op == Op.Reveal) _stepReveal();
            else if (op == Op.SlashNoReveal) _stepSlashNoReveal();
            else VM.warp(block.timestamp + bound(arg, 1, 250));
            _checkBooks();
        }
    }

    function testFuzz_depositRejectsZeroAndAmountsBeyondUint96(uint256 first, uint256 second) public {
        VM.expectRevert(IAnchorCoordinator.ZeroAmount.selector);
        _deposit(taskId, p, 0);

        first = bound(first, 1, type(uint96).max);
        Fixture.fundAccount(token, address(coordinator), p, first);
        _deposit(taskId, p, first);
        uint256 room = type(uint96).max - first;
        second = bound(second, room + 1, room + type(uint128).max);
        Fixture.fundAccount(token, address(coordinator), p, second);
        VM.expectRevert(abi.encodeWithSelector(IAnchorCoordinator.AmountTooLarge.selector, second, room));
        _deposit(taskId, p, second);
        assertEq(coordinator.participantInfo(taskId, p).stake, first, "stake after the refused deposit");
    }

    /// Commit needs minStake of free stake: stake pending withdrawal does not count, whatever the amounts.
    function testFuzz_commitNeedsFreeStake(uint256 stake, uint256 pending) public {
        uint256 minStake = 100 * TOKEN;
        stake = bound(stake, 1, 1_000 * TOKEN);
        _deposit(taskId, p, stake);
        pending = bound(pending, 0, stake);
        if (pending != 0) {
            VM.prank(p);
            coordinator.requestWithdrawal(taskId, pending);
        }
        uint256 free = stake - pending;
        uint256 tooMuch = free + 1;
        VM.expectRevert(
            abi.encodeWithSelector(
                IAnchorCoordinator.InsufficientFreeStake.selector,
                taskId,
                p,
                tooMuch,
                free
            )
        );
        VM.prank(p);
        coordinator.requestWithdrawal(taskId, tooMuch);

        uint256 r = coordinator.openRound(taskId);
        if (free < minStake) {
            VM.expectRevert(
                abi.encodeWithSelector(
                    IAnchorCoordinator.InsufficientFreeStake.selector,
                    taskId,
                    p,
                    minStake,
                    free
                )
            );
        }
        _commit(taskId, r, p);
        assertEq(coordinator.roundInfo(taskId, r).commitCount, free < minStake ? 0 : 1, "commitCount");
    }

    // ------------------------------------------------------------------ steps

    function _stepDeposit(uint256 arg) private {
        uint256 amount = bound(arg, 1, 5_000 * TOKEN);
        token.mint(p, amount);
        model.minted += amount;
        _deposit(taskId, p, amount);
        model.stake += amount;
        model.deposited += amount;
    }

    function _stepRequestWithdrawal(uint256 arg) private {
        Model memory m = _settled();
        // Up to a little more than the whole stake, so the free-stake check is exercised too.
        uint256 amount = bound(arg, 1, m.stake + 10 * TOKEN);
        uint256 free = m.stake - m.pending;
        bool ok = amount <= free;
        if (!ok) {
            VM.expectRevert(
                abi.encodeWithSelector(
                    IAnchorCoordinator.InsufficientFreeStake.selector,
                    taskId,
                    p,
                    amount,
                    free
                )
            );
        }
        VM.prank(p);
        coordinator.requestWithdrawal(taskId, amount);
        if (ok) {
            m.pending += amount;
            m.unlockAt = block.timestamp + UNBONDING_DELAY;
            model = m;
        }
    }

    function _stepWithdraw() private {
        Model memory m = _settled();
        IAnchorCoordinator.RoundPhase phase = _modelPhase(m.lastRound);
        bytes memory expected;
        if (m.pending == 0) {
            expected = abi.encodeWithSelector(IAnchorCoordinator.NoPendingWithdrawal.selector, taskId, p);
        } else if (block.timestamp < m.unlockAt) {
            expected = abi.encodeWithSelector(
                IAnchorCoordinator.WithdrawalNotUnlocked.selector,
                taskId,
                p,
                m.unlockAt,
                block.timestamp
            );
        } else if (m.lastRound != 0 && !_finished(phase)) {
            // Stake backing an unfinished round never leaves, whatever the unbonding delay.
            expected = abi.encodeWithSelector(
                IAnchorCoordinator.StakeLocked.selector,
                taskId,
                p,
                m.lastRound,
                phase
            );
        }
        if (expected.length != 0) VM.expectRevert(expected);
        VM.prank(p);
        uint256 paid = coordinator.withdraw(taskId);
        if (expected.length == 0) {
            assertEq(paid, m.pending, "withdrawn amount");
            m.stake -= paid;
            m.withdrawn += paid;
            m.pending = 0;
            model = m;
        }
    }

    function _stepCommit() private {
        if (round == 0 || _finished(_modelPhase(round))) _openRound();
        Model memory m = _settled();
        IAnchorCoordinator.RoundPhase phase = _modelPhase(round);
        uint256 free = m.stake - m.pending;
        bytes memory expected;
        if (phase != IAnchorCoordinator.RoundPhase.Commit) {
            expected = _unexpectedPhase(taskId, round, phase, IAnchorCoordinator.RoundPhase.Commit);
        } else if (m.lastRound == round) {
            expected = abi.encodeWithSelector(IAnchorCoordinator.AlreadyCommitted.selector, taskId, round, p);
        } else if (free < 100 * TOKEN) {
            expected = abi.encodeWithSelector(
                IAnchorCoordinator.InsufficientFreeStake.selector,
                taskId,
                p,
                100 * TOKEN,
                free
            );
        }
        if (expected.length != 0) VM.expectRevert(expected);
        _commit(taskId, round, p);
        if (expected.length == 0) {
            m.lastRound = round;
            m.revealed = false;
            m.slashed = false;
            model = m;
        }
    }

    function _stepReveal() private {
        if (model.lastRound != round || round == 0 || model.revealed) return;
        if (_modelPhase(round) == IAnchorCoordinator.RoundPhase.Commit) VM.warp(commitEnd);
        if (_modelPhase(round) != IAnchorCoordinator.RoundPhase.Reveal) return;
        _reveal(taskId, round, p);
        model.revealed = true;
        // The only committer revealed: the reveal phase closes now.
        revealEnd = block.timestamp;
        aggregationEnd = block.timestamp + Fixture.WINDOW;
    }

    function _stepSlashNoReveal() private {
        Model memory m = model;
        IAnchorCoordinator.RoundPhase phase = _modelPhase(m.lastRound);
        bytes memory expected;
        if (m.lastRound == 0 || m.slashed || m.revealed) {
            expected = abi.encodeWithSelector(
                IAnchorCoordinator.NoUnrevealedCommitment.selector,
                taskId,
                m.lastRound,
                p,
                m.lastRound
            );
        } else if (
            phase == IAnchorCoordinator.RoundPhase.Commit || phase == IAnchorCoordinator.RoundPhase.Reveal
        ) {
            expected = abi.encodeWithSelector(
                IAnchorCoordinator.UnexpectedRoundPhase.selector,
                taskId,
                m.lastRound,
                phase,
                _phaseBit(IAnchorCoordinator.RoundPhase.Aggregation) |
                    _phaseBit(IAnchorCoordinator.RoundPhase.Finalized) |
                    _phaseBit(IAnchorCoordinator.RoundPhase.Failed)
            );
        }
        if (expected.length != 0) VM.expectRevert(expected);
        VM.prank(slasher);
        coordinator.slashNoReveal(taskId, m.lastRound, p);
        if (expected.length == 0) {
            _slash(m);
            model = m;
        }
    }

    // ------------------------------------------------------------------ model

    function _openRound() private {
        round = coordinator.openRound(taskId);
        commitEnd = block.timestamp + Fixture.WINDOW;
        revealEnd = commitEnd + Fixture.WINDOW;
        aggregationEnd = revealEnd + Fixture.WINDOW;
    }

    /// @dev Nobody submits results here, so every round but the current one has Failed.
    function _modelPhase(uint256 r) private view returns (IAnchorCoordinator.RoundPhase) {
        if (r == 0 || r > round) return IAnchorCoordinator.RoundPhase.None;
        if (r < round) return IAnchorCoordinator.RoundPhase.Failed;
        if (block.timestamp < commitEnd) return IAnchorCoordinator.RoundPhase.Commit;
        if (block.timestamp < revealEnd) return IAnchorCoordinator.RoundPhase.Reveal;
        if (block.timestamp < aggregationEnd) return IAnchorCoordinator.RoundPhase.Aggregation;
        return IAnchorCoordinator.RoundPhase.Failed;
    }

    function _finished(IAnchorCoordinator.RoundPhase phase) private pure returns (bool) {
        return
            phase == IAnchorCoordinator.RoundPhase.Finalized || phase == IAnchorCoordinator.RoundPhase.Failed;
    }

    /// @dev The model after the lazy no-reveal slash the contract applies before moving stake (kept only on success).
    function _settled() private view returns (Model memory m) {
        m = model;
        IAnchorCoordinator.RoundPhase phase = _modelPhase(m.lastRound);
        bool owes =
            m.lastRound != 0 &&
                !m.slashed &&
                !m.revealed &&
                phase != IAnchorCoordinator.RoundPhase.Commit &&
                phase != IAnchorCoordinator.RoundPhase.Reveal;
        if (owes) _slash(m);
    }

    function _slash(Model memory m) private pure {
        uint256 amount = (m.stake * NO_REVEAL_BPS) / 10_000;
        m.stake -= amount;
        if (m.pending > m.stake) m.pending = m.stake;
        m.slashed = true;
        m.slashedTotal += amount;
    }

    function _checkBooks() private view {
        IAnchorCoordinator.ParticipantInfo memory info = coordinator.participantInfo(taskId, p);
        assertEq(
            info.stake,
            model.deposited - model.withdrawn - model.slashedTotal,
            "stake = deposits - withdrawals - slashes"
        );
        assertEq(info.stake, model.stake, "stake");
        assertEq(info.pendingWithdrawal, model.pending, "pending withdrawal");
        assertLe(info.pendingWithdrawal, info.stake, "pending withdrawal above stake");
        assertEq(info.lastRound, model.lastRound, "last round");
        assertTrue(info.revealed == model.revealed, "revealed flag");
        assertTrue(info.slashed == model.slashed, "slashed flag");
        if (model.pending != 0) assertEq(info.unlockAt, model.unlockAt, "unlock time");
        if (round != 0) assertPhase(taskId, round, _modelPhase(round), "round phase");
        assertEq(
            token.balanceOf(p),
            model.minted - model.deposited + model.withdrawn,
            "participant's wallet"
        );

        // The coordinator holds exactly: stake + escrow + the open round's budget + the aggregators' bonds.
        uint256 owed =
            info.stake + coordinator.taskInfo(taskId).rewardEscrow + aggregators.length * 500 * TOKEN;
        if (round != 0) owed += coordinator.roundInfo(taskId, round).budget;
        assertEq(token.balanceOf(address(coordinator)), owed, "coordinator balance = what it owes");
    }
}
