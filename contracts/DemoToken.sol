// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/**
 * @title DemoToken
 * @notice The stake and reward token of AnchorFL demos and tests: a plain ERC-20 with EIP-2612 permit, so a
 * participant stakes in one transaction ({AnchorCoordinator-depositWithPermit}).
 *
 * Two ways to get tokens, both deliberate: the owner (the deployer) mints any amount with {mint}, e.g. to seed
 * a task's reward escrow; anyone may take up to {FAUCET_CAP} per call from {faucet}, so participants on other
 * machines can join a demo network without asking the owner. It has no value: never use it on a real network.
 */
contract DemoToken is ERC20, ERC20Permit, Ownable {
    /// @notice Most tokens one {faucet} call hands out (1,000 tokens of 18 decimals).
    uint256 public constant FAUCET_CAP = 1_000 ether;

    /// @notice A faucet call asked for `requested` tokens, more than the cap `max` (or zero).
    error FaucetAmountOutOfRange(uint256 requested, uint256 max);

    /// @param initialOwner the account allowed to {mint} without limit
    constructor(
        address initialOwner
    ) ERC20("AnchorFL Demo Token", "AFLD") ERC20Permit("AnchorFL Demo Token") Ownable(initialOwner) {}

    /**
     * @notice Mints `amount` to `to` (owner only).
     * @param to recipient
     * @param amount tokens to create
     */
    function mint(address to, uint256 amount) external onlyOwner {
        _mint(to, amount);
    }

    /**
     * @notice Mints `amount` (1 .. FAUCET_CAP) to the caller; anyone may call it, as often as they like.
     * @param amount tokens to create
     */
    function faucet(uint256 amount) external {
        if (amount == 0 || amount > FAUCET_CAP) revert FaucetAmountOutOfRange(amount, FAUCET_CAP);
        _mint(msg.sender, amount);
    }
}
