// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/**
 * @notice The few cheatcodes these tests use (forge-std cannot be fetched here), at the address every
 * Foundry-compatible runner, Hardhat 3's included, serves them from.
 */
interface IVm {
    function warp(uint256 newTimestamp) external;
    function prank(address msgSender) external;
    function startPrank(address msgSender) external;
    function stopPrank() external;
    function expectRevert(bytes calldata revertData) external;
    function expectRevert(bytes4 revertData) external;
    function assume(bool condition) external;
    function chainId(uint256 newChainId) external;
    function addr(uint256 privateKey) external pure returns (address);
    function sign(uint256 privateKey, bytes32 digest) external pure returns (uint8 v, bytes32 r, bytes32 s);
    function label(address account, string calldata newLabel) external;
}

IVm constant VM = IVm(address(uint160(uint256(keccak256("hevm cheat code")))));
