// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {Strings} from "@openzeppelin/contracts/utils/Strings.sol";
import {AnchorCoordinator} from "../../../contracts/AnchorCoordinator.sol";
import {DemoToken} from "../../../contracts/DemoToken.sol";
import {IAnchorCoordinator} from "../../../contracts/IAnchorCoordinator.sol";
import {VM} from "./Vm.sol";

/**
 * @notice Shared setup for the Solidity tests: the default task config (the TypeScript fixtures' values), the
 * protocol's hashes computed from the specification (never through the contract), and token plumbing.
 */
library Fixture {
    uint256 internal constant TOKEN = 1e18;
    uint32 internal constant WINDOW = 100;

    /// @dev The default config: 3 aggregators, quorum 2, 100 s windows, slash rates 10% / 20% / 50% / 30%.
    function config(
        DemoToken token,
        address[] memory aggregators
    ) internal pure returns (IAnchorCoordinator.TaskConfig memory c) {
        c.stakeToken = IERC20(address(token));
        c.minStake = uint96(100 * TOKEN);
        c.rewardPerRound = uint96(1_000 * TOKEN);
        c.aggregatorBond = uint96(500 * TOKEN);
        c.commitWindow = WINDOW;
        c.revealWindow = WINDOW;
        c.aggregationWindow = WINDOW;
        c.unbondingDelay = 50;
        c.maxParticipants = 3;
        c.outlierSlashBps = 1_000;
        c.noRevealSlashBps = 2_000;
        c.invalidSlashBps = 5_000;
        c.duplicateSlashBps = 3_000;
        c.dissentPenaltyBps = 1_000;
        c.quorum = 2;
        c.genesisModelDigest = keccak256("genesis model");
        c.modelSpecDigest = keccak256("model spec");
        c.aggregators = aggregators;
    }

    /// @dev The commitment exactly as IAnchorCoordinator specifies it.
    function commitment(
        uint256 chainId,
        address coordinator,
        uint256 taskId,
        uint256 round,
        address participant,
        bytes32 updateDigest,
        bytes32 salt
    ) internal pure returns (bytes32) {
        return keccak256(abi.encode(chainId, coordinator, taskId, round, participant, updateDigest, salt));
    }

    /// @dev A reward leaf as OpenZeppelin's StandardMerkleTree builds it for ["address", "uint256"].
    function rewardLeaf(address account, uint256 amount) internal pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(account, amount))));
    }

    /// @dev Mints `amount` to `account` (the caller must own `token`) and lets `coordinator` pull all of it.
    function fundAccount(DemoToken token, address coordinator, address account, uint256 amount) internal {
        token.mint(account, amount);
        VM.prank(account);
        token.approve(coordinator, type(uint256).max);
    }

    /// @dev `n` distinct actor addresses derived from `label`, with readable labels in traces.
    function actors(string memory label, uint256 n) internal returns (address[] memory out) {
        out = new address[](n);
        for (uint256 i = 0; i < n; ++i) {
            out[i] = address(uint160(uint256(keccak256(abi.encode(label, i)))));
            VM.label(out[i], string.concat(label, "-", Strings.toString(i)));
        }
    }

    /// @dev A new coordinator and a token owned by the caller.
    function deploy() internal returns (DemoToken token, AnchorCoordinator coordinator) {
        token = new DemoToken(address(this));
        coordinator = new AnchorCoordinator();
    }
}
