// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Strings} from "@openzeppelin/contracts/utils/Strings.sol";

/**
 * @notice The assertions and input shaping these tests need (forge-std cannot be fetched here). A failed assertion
 * reverts with a message naming the quantity and both values, which the test runner prints.
 */
abstract contract Assertions {
    function assertEq(uint256 got, uint256 want, string memory what) internal pure {
        if (got != want) {
            revert(string.concat(what, ": got ", Strings.toString(got), ", want ", Strings.toString(want)));
        }
    }

    function assertEq(bytes32 got, bytes32 want, string memory what) internal pure {
        if (got != want) {
            revert(
                string.concat(
                    what,
                    ": got ",
                    Strings.toHexString(uint256(got), 32),
                    ", want ",
                    Strings.toHexString(uint256(want), 32)
                )
            );
        }
    }

    function assertEq(address got, address want, string memory what) internal pure {
        if (got != want) {
            revert(
                string.concat(what, ": got ", Strings.toHexString(got), ", want ", Strings.toHexString(want))
            );
        }
    }

    function assertTrue(bool condition, string memory what) internal pure {
        if (!condition) revert(what);
    }

    function assertLe(uint256 got, uint256 max, string memory what) internal pure {
        if (got > max) {
            revert(string.concat(what, ": ", Strings.toString(got), " > ", Strings.toString(max)));
        }
    }

    function assertGe(uint256 got, uint256 min, string memory what) internal pure {
        if (got < min) {
            revert(string.concat(what, ": ", Strings.toString(got), " < ", Strings.toString(min)));
        }
    }

    /// @dev Maps any fuzzed `x` into [min, max] (like forge-std's bound) so no run is wasted on a rejected input.
    function bound(uint256 x, uint256 min, uint256 max) internal pure returns (uint256) {
        if (min > max) revert("bound: min > max");
        uint256 span = max - min;
        if (span == type(uint256).max) return x;
        return min + (x % (span + 1));
    }
}
