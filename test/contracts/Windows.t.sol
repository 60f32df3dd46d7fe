// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

// Test code is never deployed: assertion messages say what broke, however long, and comparisons read like the spec.
// solhint-disable gas-small-strings, gas-strict-inequalities

import {IAnchorCoordinator} from "../../contracts/IAnchorCoordinator.sol";
import {CoordinatorTest} from "./utils/CoordinatorTest.sol";
import {VM} from "./utils/Vm.sol";

/**
 * @notice Fuzz tests of the phase windows: for random window lengths and start times, the last second of each
 * phase and the first second of the next give the expected phase, and each operation works on the last second of
 * its phase and reverts with UnexpectedRoundPhase on the first second after it. Phases are half-open [start, end).
 */
contract WindowsTest is CoordinatorTest {
    uint256 private constant MAX_WINDOW = 30 days;

    struct Deadlines {
        uint256 commitEnd;
        uint256 revealEnd;
        uint256 aggregationEnd;
    }

    function testFuzz_eachPhaseEndsExactlyAtItsDeadline(
        uint256 commitWindow,
        uint256 revealWindow,
        uint256 aggregationWindow,
        uint256 start
    ) public {
        IAnchorCoordinator.TaskConfig memory c = _config();
        c.commitWindow = uint32(bound(commitWindow, 1, MAX_WINDOW));
        c.revealWindow = uint32(bound(revealWindow, 1, MAX_WINDOW));
        c.aggregationWindow = uint32(bound(aggregationWindow, 1, MAX_WINDOW));
        c.maxParticipants = 10; // never full here: only the clock closes phases
        uint256 task = _createTask(c);
        for (uint256 i = 0; i < 4; ++i) _deposit(task, participants[i], 100 * TOKEN);

        VM.warp(bound(start, block.timestamp, 1 << 39));
        uint256 round = coordinator.openRound(task);
        Deadlines memory d = Deadlines(
            block.timestamp + c.commitWindow,
            block.timestamp + c.commitWindow + c.revealWindow,
            block.timestamp + c.commitWindow + c.revealWindow + c.aggregationWindow
        );
        _checkDeadlines(task, round, d);
        _acrossCommitEnd(task, round, d.commitEnd);
        _acrossRevealEnd(task, round, d.revealEnd);
        _acrossAggregationEnd(task, round, d.aggregationEnd);
    }

    /// @dev Last second of Commit: commits land, reveals are too early. First of Reveal: the reverse.
    function _acrossCommitEnd(uint256 task, uint256 round, uint256 commitEnd) private {
        VM.warp(commitEnd - 1);
        assertPhase(task, round, IAnchorCoordinator.RoundPhase.Commit, "phase at commitEnd - 1");
        for (uint256 i = 0; i < 3; ++i) _commit(task, round, participants[i]);
        _expectPhaseError(
            task,
            round,
            IAnchorCoordinator.RoundPhase.Commit,
            IAnchorCoordinator.RoundPhase.Reveal
        );
        _reveal(task, round, participants[0]);

        VM.warp(commitEnd);
        assertPhase(task, round, IAnchorCoordinator.RoundPhase.Reveal, "phase at commitEnd");
        _expectPhaseError(
            task,
            round,
            IAnchorCoordinator.RoundPhase.Reveal,
            IAnchorCoordinator.RoundPhase.Commit
        );
        _commit(task, round, participants[3]);
        _reveal(task, round, participants[0]);
    }

    /**
     * @dev Last second of Reveal: reveals land; no result and no no-reveal slash yet. First of Aggregation: reveals
     * are too late, results and no-reveal slashes land. participants[2] never reveals.
     */
    function _acrossRevealEnd(uint256 task, uint256 round, uint256 revealEnd) private {
        address late = participants[2];
        VM.warp(revealEnd - 1);
        assertPhase(task, round, IAnchorCoordinator.RoundPhase.Reveal, "phase at revealEnd - 1");
        _reveal(task, round, participants[1]);
        _expectPhaseError(
            task,
            round,
            IAnchorCoordinator.RoundPhase.Reveal,
            IAnchorCoordinator.RoundPhase.Aggregation
        );
        _submit(task, round, aggregators[0], "x");
        VM.expectRevert(
            abi.encodeWithSelector(
                IAnchorCoordinator.UnexpectedRoundPhase.selector,
                task,
                round,
                IAnchorCoordinator.RoundPhase.Reveal,
                _phaseBit(IAnchorCoordinator.RoundPhase.Aggregation) |
                    _phaseBit(IAnchorCoordinator.RoundPhase.Finalized) |
                    _phaseBit(IAnchorCoordinator.RoundPhase.Failed)
            )
        );
        coordinator.slashNoReveal(task, round, late);

        VM.warp(revealEnd);
        assertPhase(task, round, IAnchorCoordinator.RoundPhase.Aggregation, "phase at revealEnd");
        _expectPhaseError(
            task,
            round,
            IAnchorCoordinator.RoundPhase.Aggregation,
            IAnchorCoordinator.RoundPhase.Reveal
        );
        _reveal(task, round, late);
        _submit(task, round, aggregators[0], "x");
        coordinator.slashNoReveal(task, round, late);
        assertTrue(coordinator.participantInfo(task, late).slashed, "no-reveal slash at revealEnd");
    }

    /**
     * @dev Last second of Aggregation: a dissenting result still lands, and no round may open. First second after it
     * without quorum: Failed; results are too late and the next round may open.
     */
    function _acrossAggregationEnd(uint256 task, uint256 round, uint256 aggregationEnd) private {
        VM.warp(aggregationEnd - 1);
        assertPhase(task, round, IAnchorCoordinator.RoundPhase.Aggregation, "phase at aggregationEnd - 1");
        _submit(task, round, aggregators[1], "y");
        VM.expectRevert(
            abi.encodeWithSelector(
                IAnchorCoordinator.UnexpectedRoundPhase.selector,
                task,
                round,
                IAnchorCoordinator.RoundPhase.Aggregation,
                _phaseBit(IAnchorCoordinator.RoundPhase.Finalized) |
                    _phaseBit(IAnchorCoordinator.RoundPhase.Failed)
            )
        );
        coordinator.openRound(task);

        VM.warp(aggregationEnd);
        assertPhase(task, round, IAnchorCoordinator.RoundPhase.Failed, "phase at aggregationEnd");
        _expectPhaseError(
            task,
            round,
            IAnchorCoordinator.RoundPhase.Failed,
            IAnchorCoordinator.RoundPhase.Aggregation
        );
        _submit(task, round, aggregators[2], "x");
        uint256 next = coordinator.openRound(task);
        assertPhase(task, round, IAnchorCoordinator.RoundPhase.Failed, "old round after the next opened");
        assertPhase(task, next, IAnchorCoordinator.RoundPhase.Commit, "next round");
    }

    /**
     * The commit that fills the last slot closes the commit phase at its own timestamp, and the reveal that completes
     * the committers closes the reveal phase at its own; later deadlines move with them.
     */
    function testFuzz_fullPhasesCloseEarlyAtTheClosingSecond(
        uint256 maxParticipants,
        uint256 commitOffset,
        uint256 revealOffset,
        uint256 windowSeed
    ) public {
        IAnchorCoordinator.TaskConfig memory c = _config();
        uint256 n = bound(maxParticipants, 1, participants.length - 1);
        c.maxParticipants = uint16(n);
        c.commitWindow = uint32(bound(windowSeed, 1, MAX_WINDOW));
        c.revealWindow = uint32(bound(windowSeed >> 64, 1, MAX_WINDOW));
        c.aggregationWindow = uint32(bound(windowSeed >> 128, 1, MAX_WINDOW));
        uint256 task = _createTask(c);
        for (uint256 i = 0; i <= n; ++i) _deposit(task, participants[i], 100 * TOKEN);
        uint256 round = coordinator.openRound(task);

        uint256 closedAt = block.timestamp + bound(commitOffset, 0, c.commitWindow - 1);
        VM.warp(closedAt);
        for (uint256 i = 0; i < n; ++i) _commit(task, round, participants[i]);
        assertPhase(task, round, IAnchorCoordinator.RoundPhase.Reveal, "phase after the last slot filled");
        _checkDeadlines(
            task,
            round,
            Deadlines(closedAt, closedAt + c.revealWindow, closedAt + c.revealWindow + c.aggregationWindow)
        );
        _expectPhaseError(
            task,
            round,
            IAnchorCoordinator.RoundPhase.Reveal,
            IAnchorCoordinator.RoundPhase.Commit
        );
        _commit(task, round, participants[n]);

        uint256 revealedAt = closedAt + bound(revealOffset, 0, c.revealWindow - 1);
        VM.warp(revealedAt);
        for (uint256 i = 0; i < n; ++i) _reveal(task, round, participants[i]);
        assertPhase(task, round, IAnchorCoordinator.RoundPhase.Aggregation, "phase after the last reveal");
        _checkDeadlines(task, round, Deadlines(closedAt, revealedAt, revealedAt + c.aggregationWindow));
    }

    function _checkDeadlines(uint256 task, uint256 round, Deadlines memory d) private view {
        IAnchorCoordinator.RoundInfo memory info = coordinator.roundInfo(task, round);
        assertEq(info.commitEnd, d.commitEnd, "commitEnd");
        assertEq(info.revealEnd, d.revealEnd, "revealEnd");
        assertEq(info.aggregationEnd, d.aggregationEnd, "aggregationEnd");
    }

    /// @dev Expects the next call to revert with UnexpectedRoundPhase(task, round, current, bit of `needed`).
    function _expectPhaseError(
        uint256 task,
        uint256 round,
        IAnchorCoordinator.RoundPhase current,
        IAnchorCoordinator.RoundPhase needed
    ) private {
        VM.expectRevert(_unexpectedPhase(task, round, current, needed));
    }

    function _submit(uint256 task, uint256 round, address aggregator, bytes32 label) private {
        IAnchorCoordinator.Result memory r = _emptyResult(label);
        VM.prank(aggregator);
        coordinator.submitResult(task, round, r);
    }
}
