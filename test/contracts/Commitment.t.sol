// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

// Test code is never deployed: assertion messages say what broke, however long, and comparisons read like the spec.
// solhint-disable gas-small-strings, gas-strict-inequalities

import {AnchorCoordinator} from "../../contracts/AnchorCoordinator.sol";
import {IAnchorCoordinator} from "../../contracts/IAnchorCoordinator.sol";
import {CoordinatorTest} from "./utils/CoordinatorTest.sol";
import {Fixture} from "./utils/Fixture.sol";
import {VM} from "./utils/Vm.sol";

/**
 * @notice Fuzz tests of the commitment scheme: the contract hashes exactly the specified fields, each field changes
 * the hash, and a reveal whose commitment was bound to any other value of any field is refused.
 */
contract CommitmentTest is CoordinatorTest {
    /// @dev The fields a commitment binds, in the order of the specification.
    enum Field {
        ChainId,
        Coordinator,
        TaskId,
        Round,
        Participant,
        UpdateDigest,
        Salt
    }

    struct Inputs {
        uint256 chainId;
        address coordinator;
        uint256 taskId;
        uint256 round;
        address participant;
        bytes32 updateDigest;
        bytes32 salt;
    }

    /// @dev The round these tests commit in: the first of setUp's task.
    uint256 private constant ROUND = 1;

    AnchorCoordinator internal otherCoordinator;

    function setUp() public override {
        super.setUp();
        otherCoordinator = new AnchorCoordinator();
    }

    function testFuzz_commitmentOfMatchesTheSpecification(
        uint64 chainId,
        uint256 task,
        uint256 round,
        address participant,
        bytes32 updateDigest,
        bytes32 salt
    ) public {
        VM.chainId(bound(chainId, 1, type(uint64).max));
        bytes32 expected = Fixture.commitment(
            block.chainid,
            address(coordinator),
            task,
            round,
            participant,
            updateDigest,
            salt
        );
        assertEq(
            coordinator.commitmentOf(task, round, participant, updateDigest, salt),
            expected,
            "commitmentOf"
        );
    }

    function testFuzz_changingAnyFieldChangesTheCommitment(
        uint256 task,
        uint256 round,
        address participant,
        bytes32 updateDigest,
        bytes32 salt,
        uint8 fieldSeed,
        uint256 delta
    ) public {
        Field field = Field(bound(fieldSeed, 0, uint8(type(Field).max)));
        delta = delta | 1; // a non-zero change, also in the low 160 bits of an address
        bytes32 original = coordinator.commitmentOf(task, round, participant, updateDigest, salt);
        bytes32 changed;
        if (field == Field.ChainId) {
            VM.chainId(block.chainid == 1 ? 2 : 1);
            changed = coordinator.commitmentOf(task, round, participant, updateDigest, salt);
        } else if (field == Field.Coordinator) {
            changed = otherCoordinator.commitmentOf(task, round, participant, updateDigest, salt);
        } else if (field == Field.TaskId) {
            changed = coordinator.commitmentOf(task ^ delta, round, participant, updateDigest, salt);
        } else if (field == Field.Round) {
            changed = coordinator.commitmentOf(task, round ^ delta, participant, updateDigest, salt);
        } else if (field == Field.Participant) {
            address other = address(uint160(participant) ^ uint160(delta));
            changed = coordinator.commitmentOf(task, round, other, updateDigest, salt);
        } else if (field == Field.UpdateDigest) {
            changed = coordinator.commitmentOf(task, round, participant, updateDigest ^ bytes32(delta), salt);
        } else {
            changed = coordinator.commitmentOf(task, round, participant, updateDigest, salt ^ bytes32(delta));
        }
        assertTrue(changed != original, "a changed field left the commitment unchanged");
    }

    /**
     * A commitment computed with one field different from the honest reveal's (another chain, contract, task, round,
     * sender, digest or salt: a replayed or copied commitment) is accepted at commit time, since the contract cannot
     * tell, but can never be revealed; nothing counts until the committer reveals its own values.
     */
    function testFuzz_revealOfACommitmentBoundToAnyOtherFieldReverts(
        uint8 participantSeed,
        uint8 fieldSeed,
        uint256 delta,
        bytes32 updateDigest,
        bytes32 salt
    ) public {
        address p = participants[bound(participantSeed, 0, participants.length - 1)];
        Field field = Field(bound(fieldSeed, 0, uint8(type(Field).max)));
        delta = delta | 1;
        Inputs memory honest = Inputs(
            block.chainid,
            address(coordinator),
            taskId,
            ROUND,
            p,
            updateDigest,
            salt
        );
        bytes32 committed = _hash(_alter(honest, field, delta));
        _commitInFirstRound(p, committed);

        VM.expectRevert(
            abi.encodeWithSelector(
                IAnchorCoordinator.CommitmentMismatch.selector,
                taskId,
                ROUND,
                p,
                committed,
                _hash(honest)
            )
        );
        VM.prank(p);
        coordinator.reveal(taskId, ROUND, updateDigest, 600, salt, bytes32(0));
        assertEq(coordinator.roundInfo(taskId, ROUND).revealCount, 0, "revealCount");
        assertTrue(!coordinator.participantInfo(taskId, p).revealed, "a mismatched reveal counted");
    }

    /**
     * After an honest commit, a reveal with a wrong digest, a wrong salt or from another sender reverts with
     * CommitmentMismatch naming both hashes and changes nothing; the honest reveal then succeeds with any sample
     * count and content root (those are disclosed at reveal, not committed).
     */
    function testFuzz_revealWithAWrongFieldRevertsAndTheHonestOneCounts(
        uint8 participantSeed,
        uint8 fieldSeed,
        uint256 delta,
        bytes32 updateDigest,
        bytes32 salt,
        uint64 numSamples,
        bytes32 contentRoot
    ) public {
        uint256 pi = bound(participantSeed, 0, participants.length - 1);
        address other = participants[(pi + 1) % participants.length];
        Inputs memory honest = Inputs(
            block.chainid,
            address(coordinator),
            taskId,
            ROUND,
            participants[pi],
            updateDigest,
            salt
        );
        _commitInFirstRound(honest.participant, _hash(honest));

        // Which of the reveal's own inputs is wrong: the digest, the salt, or the sender.
        uint256 wrong = bound(fieldSeed, 0, 2);
        Inputs memory attempt =
            wrong == 2
                ? _alter(honest, Field.Participant, uint160(other) ^ uint160(honest.participant))
                : _alter(honest, wrong == 0 ? Field.UpdateDigest : Field.Salt, delta | 1);
        VM.expectRevert(
            abi.encodeWithSelector(
                IAnchorCoordinator.CommitmentMismatch.selector,
                taskId,
                ROUND,
                attempt.participant,
                wrong == 2 ? bytes32(0) : _hash(honest),
                _hash(attempt)
            )
        );
        _revealAs(attempt, numSamples, contentRoot);
        assertEq(coordinator.roundInfo(taskId, ROUND).revealCount, 0, "revealCount after the wrong reveal");

        _revealAs(honest, numSamples, contentRoot);
        assertTrue(
            coordinator.participantInfo(taskId, honest.participant).revealed,
            "the honest reveal did not count"
        );
        // The only committer revealed, so the reveal phase closed at once.
        assertPhase(taskId, ROUND, IAnchorCoordinator.RoundPhase.Aggregation, "phase after the only reveal");
    }

    /// @dev Stakes `p`, opens the task's first round, commits `commitment` for `p` and moves to the first second of Reveal.
    function _commitInFirstRound(address p, bytes32 commitment) private {
        _deposit(taskId, p, 100 * TOKEN);
        assertEq(coordinator.openRound(taskId), ROUND, "first round");
        VM.prank(p);
        coordinator.commit(taskId, ROUND, commitment);
        VM.warp(block.timestamp + Fixture.WINDOW);
    }

    function _revealAs(Inputs memory x, uint64 numSamples, bytes32 contentRoot) private {
        VM.prank(x.participant);
        coordinator.reveal(x.taskId, x.round, x.updateDigest, numSamples, x.salt, contentRoot);
    }

    function _alter(Inputs memory x, Field field, uint256 delta) private view returns (Inputs memory y) {
        y = Inputs(x.chainId, x.coordinator, x.taskId, x.round, x.participant, x.updateDigest, x.salt);
        if (field == Field.ChainId) y.chainId = x.chainId ^ delta;
        else if (field == Field.Coordinator) y.coordinator = address(otherCoordinator);
        else if (field == Field.TaskId) y.taskId = x.taskId ^ delta;
        else if (field == Field.Round) y.round = x.round ^ delta;
        else if (field == Field.Participant) y.participant = address(uint160(x.participant) ^ uint160(delta));
        else if (field == Field.UpdateDigest) y.updateDigest = x.updateDigest ^ bytes32(delta);
        else y.salt = x.salt ^ bytes32(delta);
    }

    function _hash(Inputs memory x) private pure returns (bytes32) {
        return
            Fixture.commitment(
                x.chainId,
                x.coordinator,
                x.taskId,
                x.round,
                x.participant,
                x.updateDigest,
                x.salt
            );
    }
}
