// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

// Calling an arbitrary target and re-throwing its exact revert data is the point of this contract.
// solhint-disable avoid-low-level-calls, no-inline-assembly
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/**
 * @title ReentrantToken
 * @notice Test-only hostile ERC-20: once armed, its next transfer calls `target` with `data` in the middle of the
 * token movement (as a malicious token would) and bubbles up any revert, so tests see what the victim did.
 */
contract ReentrantToken is ERC20 {
    address private _target;
    bytes private _data;

    constructor() ERC20("Reentrant", "REENT") {}

    /// @notice Anyone may mint: this token only exists in tests.
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @notice Makes the next transfer call `target` with `data` once.
    function arm(address target, bytes calldata data) external {
        _target = target;
        _data = data;
    }

    function _update(address from, address to, uint256 value) internal override {
        super._update(from, to, value);
        address target = _target;
        if (target == address(0)) return;
        _target = address(0);
        (bool ok, bytes memory reason) = target.call(_data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(reason, 32), mload(reason))
            }
        }
    }
}
