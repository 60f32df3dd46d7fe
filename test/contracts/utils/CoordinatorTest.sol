// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {AnchorCoordinator} from "../../../contracts/AnchorCoordinator.sol";
import {DemoToken} from "../../../contracts/DemoToken.sol";
import {IAnchorCoordinator} from "../../../contracts/IAnchorCoordinator.sol";
import {Assertions} from "./Assertions.sol";
import {Fixture} from "./Fixture.sol";
import {VM} from "./Vm.sol";

/**
 * @notice Base of the fuzz tests: a real DemoToken and AnchorCoordinator, one funded task with the default config,
 * six participants and three aggregators holding tokens, and helpers that commit and reveal by the specification.
 */
abstract contract CoordinatorTest is Assertions {
    uint256 internal constant TOKEN = Fixture.TOKEN;

    DemoToken internal token;
    AnchorCoordinator internal coordinator;
    address[] internal aggregators;
    address[] internal participants;
    uint256 internal taskId;

    function setUp() public virtual {
        (token, coordinator) = Fixture.deploy();
        aggregators = Fixture.actors("aggregator", 3);
        participants = Fixture.actors("participant", 6);
        for (uint256 i = 0; i < aggregators.length; ++i) {
            Fixture.fundAccount(token, address(coordinator), aggregators[i], 10_000 * TOKEN);
        }
        for (uint256 i = 0; i < participants.length; ++i) {
            Fixture.fundAccount(token, address(coordinator), participants[i], 10_000 * TOKEN);
        }
        token.mint(address(this), 1_000_000 * TOKEN);
        token.approve(address(coordinator), type(uint256).max);
        taskId = _createTask(_config());
    }

    /// @dev The config setUp's task is created with; tests override single fields.
    function _config() internal view virtual returns (IAnchorCoordinator.TaskConfig memory) {
        return Fixture.config(token, aggregators);
    }

    /// @dev Creates a task owned by this contract, funds ten rounds of rewards and bonds every aggregator.
    function _createTask(IAnchorCoordinator.TaskConfig memory c) internal returns (uint256 id) {
        id = coordinator.createTask(c);
        if (c.rewardPerRound != 0) coordinator.fund(id, uint256(c.rewardPerRound) * 10);
        for (uint256 i = 0; i < c.aggregators.length; ++i) {
            VM.prank(c.aggregators[i]);
            coordinator.bondAggregator(id);
        }
    }

    function _deposit(uint256 task, address p, uint256 amount) internal {
        VM.prank(p);
        coordinator.deposit(task, amount);
    }

    function _digestOf(address p, uint256 round) internal pure returns (bytes32) {
        return keccak256(abi.encode("update", p, round));
    }

    function _saltOf(address p, uint256 round) internal pure returns (bytes32) {
        return keccak256(abi.encode("salt", p, round));
    }

    /// @dev `p`'s honest commitment for `round` of `task` on this chain and coordinator.
    function _commitmentOf(uint256 task, uint256 round, address p) internal view returns (bytes32) {
        return
            Fixture.commitment(
                block.chainid,
                address(coordinator),
                task,
                round,
                p,
                _digestOf(p, round),
                _saltOf(p, round)
            );
    }

    function _commit(uint256 task, uint256 round, address p) internal {
        bytes32 c = _commitmentOf(task, round, p);
        VM.prank(p);
        coordinator.commit(task, round, c);
    }

    function _reveal(uint256 task, uint256 round, address p) internal {
        VM.prank(p);
        coordinator.reveal(task, round, _digestOf(p, round), 600, _saltOf(p, round), bytes32(0));
    }

    function _phase(uint256 task, uint256 round) internal view returns (IAnchorCoordinator.RoundPhase) {
        return coordinator.roundPhase(task, round);
    }

    function _phaseBit(IAnchorCoordinator.RoundPhase phase) internal pure returns (bytes32) {
        return bytes32(uint256(1) << uint8(phase));
    }

    /// @dev The revert data of UnexpectedRoundPhase(task, round, current, bit of `expected`).
    function _unexpectedPhase(
        uint256 task,
        uint256 round,
        IAnchorCoordinator.RoundPhase current,
        IAnchorCoordinator.RoundPhase expected
    ) internal pure returns (bytes memory) {
        return
            abi.encodeWithSelector(
                IAnchorCoordinator.UnexpectedRoundPhase.selector,
                task,
                round,
                current,
                _phaseBit(expected)
            );
    }

    /// @dev A result with no rewards and no slashes; `label` makes results differ.
    function _emptyResult(bytes32 label) internal pure returns (IAnchorCoordinator.Result memory r) {
        r.newModelDigest = keccak256(abi.encode("model", label));
        r.reportDigest = keccak256(abi.encode("report", label));
    }

    function assertPhase(
        uint256 task,
        uint256 round,
        IAnchorCoordinator.RoundPhase want,
        string memory what
    ) internal view {
        assertEq(uint256(_phase(task, round)), uint256(want), what);
    }
}
