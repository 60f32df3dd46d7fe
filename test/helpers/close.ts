// Float comparison for tests. chai's closeTo cannot be used: the Hardhat chai matchers, once any
// test has connected to a network, replace it with a bigint version that refuses fractions.
import { expect } from "chai";

export function expectClose(actual: number, expected: number, delta: number, message?: string): void {
  const where = message ? `${message}: ` : "";
  expect(Math.abs(actual - expected) <= delta, `${where}expected ${actual} to be within ${delta} of ${expected}`).to.equal(true);
}

export function expectNotClose(actual: number, expected: number, delta: number, message?: string): void {
  const where = message ? `${message}: ` : "";
  expect(Math.abs(actual - expected) > delta, `${where}expected ${actual} not to be within ${delta} of ${expected}`).to.equal(true);
}
